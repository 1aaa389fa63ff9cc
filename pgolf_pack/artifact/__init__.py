"""The artifact: a byte-exact container for a packed model (docs/FORMAT.md)."""

from pgolf_pack.artifact.reader import Artifact, TensorEntry, load_artifact, parse_artifact, read_artifact
from pgolf_pack.artifact.writer import EncodedTensor, artifact_bytes, encode_raw, encode_tensor, write_atomic

__all__ = [
    "Artifact", "EncodedTensor", "TensorEntry", "artifact_bytes", "encode_raw", "encode_tensor",
    "load_artifact", "parse_artifact", "read_artifact", "write_atomic",
]
