"""Entropy and Shannon-floor reports for checkpoints and artifacts (the pgolf-analyze command).

    report = analyze_checkpoint(state_dict, CheckpointOptions(budget=16_000_000))
    report = analyze_artifact("final_model.pgpk")

Both return the report.json dict that docs/ANALYZE.md specifies; `plots.render_all` and
`markdown.render` turn it into PNGs and report.md.
"""

from pgolf_pack.analysis.artifact_report import analyze_artifact
from pgolf_pack.analysis.checkpoint_report import REPORT_FORMAT, CheckpointOptions, analyze_checkpoint

__all__ = ["REPORT_FORMAT", "CheckpointOptions", "analyze_artifact", "analyze_checkpoint"]
