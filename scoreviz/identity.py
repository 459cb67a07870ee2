"""A trained model's content digest: what "Train longer" names its parent by.

A model's id (`TrainConfig.model_id`) is a hash of its settings, which says what the server
*would* train, not what a given set of weights is: a model file can carry the default model's
settings beside any weights. Where a model is shared (the server-wide store, the on-disk store
of the hall's replicas), a continuation must therefore name its parent by content, or one
student's doctored parent would be "the" continuation of the default model for everyone. So
`training.continuation` puts `content_digest(parent)` into the child's config
(`TrainConfig.parent_digest`), and the child's model id, under which it is shared, binds the
parent's weights:

    content_digest = sha256("scoreviz-content-v1" | parent's model_id
                            | every tensor (net.<name>, train_points): name, shape, float32 bytes
                            | the loss history: step, loss, elapsed as float64 bytes)[:32 hex]

It is the same for a model in memory and after a round trip through a model file or the store
(float32 tensors and JSON floats are stored exactly), so replicas agree on it.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import torch

DIGEST_HEX = 32  # 128 bits: a second preimage of a classmate's parent is out of reach
DIGEST = re.compile(rf"[0-9a-f]{{{DIGEST_HEX}}}")


def content_digest(result) -> str:
    """32 hex digits of sha256 over a TrainResult's settings id, tensors and loss history."""
    h = hashlib.sha256(f"scoreviz-content-v1|{result.config.model_id}|".encode())
    tensors = {f"net.{k}": v for k, v in result.model.net.state_dict().items()}
    if result.train_points is not None:
        tensors["train_points"] = result.train_points
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    for column in ("step", "loss", "elapsed"):
        values = np.ascontiguousarray(result.history[column].to_numpy(dtype=np.float64))
        h.update(f"{column}|{values.size}|".encode())
        h.update(values.tobytes())
    return h.hexdigest()[:DIGEST_HEX]
