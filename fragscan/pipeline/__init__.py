"""Stage: orchestration. A scan from settings to outputs, its executors (in process or Ray), the resume
store and multi-checkpoint scans."""
