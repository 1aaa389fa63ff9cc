"""The artifact: a byte-exact container for a packed model (docs/FORMAT.md).

    encode_artifact([encode_tensor(name, q), ...]) -> bytes      decode_artifact(bytes) -> Artifact
    read_artifact(path) -> Artifact                              load_artifact(path) -> {name: tensor}
"""

from pgolf_pack.artifact.reader import Artifact, TensorEntry, decode_artifact, load_artifact, read_artifact
from pgolf_pack.artifact.writer import EncodedTensor, encode_artifact, encode_tensor

__all__ = [
    "Artifact", "EncodedTensor", "TensorEntry", "decode_artifact", "encode_artifact", "encode_tensor",
    "load_artifact", "read_artifact",
]
