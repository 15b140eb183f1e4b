"""The drop-in contract for recurrent layers, checked against torch.nn (used by test_rnn/lstm/gru).

`CONFIGS` covers every constructor option that changes the function; each check copies a
torch.nn layer into the lesson's (``from_torch``) in float64 and compares:

- `check_equal`: outputs and final states for tensors (both layouts, with and without an initial
  state), unbatched input and ``PackedSequence`` (same ``sorted_indices``); ``to_torch`` round trip;
- `check_gradients`: gradients of the input and of the initial state;
- `check_padding_invariance`: a sequence alone and the same sequence padded inside a packed batch
  give the same outputs and final states, in both directions (the padding holds 9s, not zeros);
- `check_cell_equal`: a cell against torch.nn's cell (batched and unbatched).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

D, H, N, T = 3, 5, 4, 6
CONFIGS = [
    dict(num_layers=L, bidirectional=bi, batch_first=bf, bias=bias)
    for L, bi, bf, bias in itertools.product([1, 2], [False, True], [False, True], [True, False])
]


def config_id(config: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in config.items())


def pair(ours_cls, torch_cls, seed: int = 0, **config):
    torch.manual_seed(seed)
    reference = torch_cls(D, H, **config).double()
    return reference, ours_cls.from_torch(reference)  # copied after the cast


def _state(reference, batch: int | None = N):
    K = (2 if reference.bidirectional else 1) * reference.num_layers
    shape = (K, batch, H) if batch else (K, H)
    if isinstance(reference, nn.LSTM):
        return torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    return torch.randn(shape, dtype=torch.float64)


def _close(a, b, atol=1e-12):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            _close(x, y, atol)
    else:
        torch.testing.assert_close(a, b, atol=atol, rtol=0)


def check_equal(ours_cls, torch_cls, **config) -> None:
    reference, ours = pair(ours_cls, torch_cls, **config)
    x = torch.randn(N, T, D, dtype=torch.float64)
    x = x if reference.batch_first else x.transpose(0, 1)
    for hx in (None, _state(reference)):
        a, b = reference(x, hx), ours(x, hx)
        _close(b[0], a[0])
        _close(b[1], a[1])
    # unbatched (T, D)
    seq = torch.randn(T, D, dtype=torch.float64)
    for hx in (None, _state(reference, batch=None)):
        a, b = reference(seq, hx), ours(seq, hx)
        _close(b[0], a[0])
        _close(b[1], a[1])
    # packed, unsorted lengths
    lengths = torch.tensor([T, 2, 4, 1])
    packed = pack_padded_sequence(x, lengths, batch_first=reference.batch_first, enforce_sorted=False)
    hx = _state(reference)
    a, b = reference(packed, hx), ours(packed, hx)
    assert isinstance(b[0], type(a[0])), "packed in, packed out"
    assert torch.equal(a[0].sorted_indices, b[0].sorted_indices)
    assert torch.equal(a[0].batch_sizes, b[0].batch_sizes)
    _close(b[0].data, a[0].data)
    _close(b[1], a[1])
    # to_torch gives back the same function
    back = ours.to_torch()
    assert type(back) is torch_cls
    _close(back(x)[0], ours(x)[0])


def check_gradients(ours_cls, torch_cls, **config) -> None:
    reference, ours = pair(ours_cls, torch_cls, **config)
    x = torch.randn(N, T, D, dtype=torch.float64)
    x = x if reference.batch_first else x.transpose(0, 1)
    hx = _state(reference)
    grads = []
    for layer in (reference, ours):
        xi = x.clone().requires_grad_()
        hi = tuple(s.clone().requires_grad_() for s in hx) if isinstance(hx, tuple) else hx.clone().requires_grad_()
        out, state = layer(xi, hi)
        weights = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        loss = (out * weights).sum() + sum(s.sum() for s in (state if isinstance(state, tuple) else (state,)))
        loss.backward()
        grads.append([xi.grad] + [s.grad for s in (hi if isinstance(hi, tuple) else (hi,))])
    for a, b in zip(*grads):
        _close(b, a)


def check_padding_invariance(ours_cls, **config) -> None:
    """The same sequence alone and padded (with 9s) inside a packed batch: same outputs and states."""
    config = dict(config, batch_first=True)
    torch.manual_seed(0)
    layer = ours_cls(D, H, **config).double()
    seq = torch.randn(1, 4, D, dtype=torch.float64)
    alone_out, alone_state = layer(seq)
    other = torch.randn(1, T, D, dtype=torch.float64)
    padded = torch.cat([torch.cat([seq, torch.full((1, T - 4, D), 9.0, dtype=torch.float64)], 1), other])
    lengths = torch.tensor([4, T])
    out, state = layer(pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True)
    _close(out[:1, :4], alone_out)
    assert out[0, 4:].abs().max() == 0, "outputs past a sequence's end are zero, as torch.nn pads them"
    _close(tuple(s[:, :1] for s in state) if isinstance(state, tuple) else state[:, :1], alone_state)
    # bidirectional: the backward direction starts at the sequence's own last step, not at the padding
    if config.get("bidirectional"):
        H_ = layer.hidden_size
        _close(out[:1, :4, H_:], alone_out[..., H_:])


def check_cell_equal(ours_cls, torch_cls, copy, **config) -> None:
    """``copy(ours, reference)`` sets the lesson cell's weights from torch.nn's cell."""
    torch.manual_seed(0)
    reference = torch_cls(D, H, **config).double()
    ours = ours_cls(D, H, **config).double()
    copy(ours, reference)
    x = torch.randn(N, D, dtype=torch.float64)
    hx = _state_cell(reference, N)
    _close(ours(x, hx), reference(x, hx))
    _close(ours(x), reference(x))
    _close(ours(x[0], _unbatch(hx)), reference(x[0], _unbatch(hx)))


def _state_cell(reference, batch):
    if isinstance(reference, nn.LSTMCell):
        return torch.randn(batch, H, dtype=torch.float64), torch.randn(batch, H, dtype=torch.float64)
    return torch.randn(batch, H, dtype=torch.float64)


def _unbatch(hx):
    return tuple(s[0] for s in hx) if isinstance(hx, tuple) else hx[0]
