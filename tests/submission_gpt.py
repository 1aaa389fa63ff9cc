"""A miniature Parameter Golf submission, for tests/test_submission.py: a baseline-shaped GPT
trained a few steps on CPU, exported with pgolf-pack's in-script API and scored back through
the counted one-line loader, logging the lines the challenge's train_gpt.py logs.

    python submission_gpt.py train DATA OUT BUDGET   # train, pack to BUDGET - this file, write OUT/final_model.pgpk
    python -I submission_gpt.py eval DATA OUT        # fresh interpreter: load through load_pgpk, score val_bpb

The line `# PGPK-LOADER` is replaced by the output of `pgolf-loader --compact` before it runs,
so this file's own bytes include the loader it evaluates with.
"""

import glob
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# PGPK-LOADER

VOCAB, DIM, LAYERS, HEADS, KV_HEADS, MLP_MULT, SEQ_LEN, VAL_TOKENS = 384, 32, 2, 2, 1, 2, 64, 8192


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn, self.mlp = nn.Module(), nn.Module()
        kv = DIM // HEADS * KV_HEADS
        self.attn.c_q, self.attn.c_k = nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, kv, bias=False)
        self.attn.c_v, self.attn.proj = nn.Linear(DIM, kv, bias=False), nn.Linear(DIM, DIM, bias=False)
        self.mlp.fc, self.mlp.proj = nn.Linear(DIM, MLP_MULT * DIM, bias=False), nn.Linear(MLP_MULT * DIM, DIM, bias=False)
        self.attn_scale = nn.Parameter(torch.ones(DIM))

    def forward(self, x):
        b, t, _ = x.shape
        y = F.rms_norm(x, (DIM,))
        q = self.attn.c_q(y).view(b, t, HEADS, -1).transpose(1, 2)
        k, v = (m(y).view(b, t, KV_HEADS, -1).transpose(1, 2).repeat_interleave(HEADS // KV_HEADS, 1)
                for m in (self.attn.c_k, self.attn.c_v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, DIM)
        x = x + self.attn_scale * self.attn.proj(o)
        return x + self.mlp.proj(F.relu(self.mlp.fc(F.rms_norm(x, (DIM,)))).square())


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))

    def forward_logits(self, idx):
        x = self.tok_emb(idx)
        for block in self.blocks:
            x = block(x)
        return F.linear(F.rms_norm(x, (DIM,)), self.tok_emb.weight)


def tokens(pattern):
    """The challenge's shards (256 int32 header, then uint16 tokens), concatenated in name order."""
    return np.concatenate([np.fromfile(f, dtype="<u2", offset=1024) for f in sorted(glob.glob(pattern))])


def val_bpb(model, data):
    """The challenge's score on the first VAL_TOKENS validation tokens, in pgolf_pack.bpb's order of sums."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=f"{data}/tokenizer.model")
    base, space, boundary = np.zeros(VOCAB, np.int64), np.zeros(VOCAB, bool), np.ones(VOCAB, bool)
    for i in range(sp.vocab_size()):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        piece = sp.id_to_piece(i)
        if sp.is_byte(i):
            base[i] = 1
            continue
        space[i] = lead = piece.startswith("\u2581")
        base[i] = len(piece[lead:].encode())
    stream = tokens(f"{data}/fineweb_val_*.bin")[:VAL_TOKENS]
    stream = torch.from_numpy(stream[: (len(stream) - 1) // SEQ_LEN * SEQ_LEN + 1].astype(np.int64))
    base, space, boundary = (torch.from_numpy(a) for a in (base, space, boundary))
    loss, count, nbytes = torch.zeros((), dtype=torch.float64), 0, 0
    x_all, y_all = stream[:-1].view(-1, SEQ_LEN), stream[1:].view(-1, SEQ_LEN)
    with torch.inference_mode():
        for i in range(0, len(x_all), 32):
            x, y = x_all[i:i + 32], y_all[i:i + 32]
            logits = model.forward_logits(x)
            loss += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").double().sum()
            count += y.numel()
            nbytes += int((base[y] + (space[y] & ~boundary[x]).long()).sum())
    val_loss = float(loss) / count
    return val_loss, val_loss / math.log(2.0) * count / nbytes


def train(data, out, budget):
    import pgolf_pack

    torch.manual_seed(0)
    model = GPT()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    stream = torch.from_numpy(tokens(f"{data}/fineweb_train_*.bin").astype(np.int64))
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        starts = torch.randint(0, len(stream) - SEQ_LEN - 1, (8,), generator=g)
        batch = torch.stack([stream[s:s + SEQ_LEN + 1] for s in starts.tolist()])
        loss = F.cross_entropy(model.forward_logits(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the export: replaces the baseline's quantize_state_dict_int8 + torch.save + zlib.compress
    code_bytes = len(open(__file__, "rb").read())
    packed = pgolf_pack.pack_checkpoint(model.state_dict(), budget, code_bytes=code_bytes)
    with open(f"{out}/final_model.pgpk", "wb") as f:
        f.write(packed.data)
    print(f"Serialized model pgpk: {len(packed.data)} bytes")
    print(f"Code size: {code_bytes} bytes")
    print(f"Total submission size pgpk: {len(packed.data) + code_bytes} bytes")


def evaluate(data, out):
    sys.modules["pgolf_pack"] = None  # the evaluation machine has no pgolf-pack: prove it
    try:
        import pgolf_pack  # noqa: F401
        raise SystemExit("pgolf_pack is importable")
    except ImportError:
        pass
    state = load_pgpk(open(f"{out}/final_model.pgpk", "rb").read())  # noqa: F821 (defined by the loader line)
    torch.save(state, f"{out}/reloaded.pt")
    model = GPT()
    model.load_state_dict(state, strict=True)
    loss, bpb = val_bpb(model.eval(), data)
    print(f"final_pgpk_roundtrip val_loss:{loss:.8f} val_bpb:{bpb!r}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        evaluate(sys.argv[2], sys.argv[3])
