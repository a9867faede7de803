"""Post-norm transformer sub-layers of the Mask2Former decoder.

All tensors are batch-first: queries (B, Q, C), memory (B, S, C). Parameter
names (``self_attn`` / ``multihead_attn`` with ``in_proj_weight``, ``out_proj``,
``norm``, ``linear1``/``linear2``) follow the official implementation so
checkpoints convert one-to-one.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _with_pos(x: Tensor, pos: Optional[Tensor]) -> Tensor:
    return x if pos is None else x + pos


def multihead_attention(attn: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor,
                        blocked: Optional[Tensor] = None) -> Tensor:
    """``attn(query, key, value, attn_mask=blocked)[0]`` for a batch-first module.

    The same projections and ``scaled_dot_product_attention`` as
    ``nn.MultiheadAttention``, but a mask shared by all heads stays one
    (B, 1, Q, S) mask: the module would take it repeated per head and turn the
    (B * heads, Q, S) booleans into a float mask of that size.

    Args:
        attn: The module (its weights, heads and dropout); ``batch_first``,
            equal query/key/value widths.
        query: Shape (B, Q, C).
        key: Shape (B, S, C).
        value: Shape (B, S, C).
        blocked: True where attention is NOT allowed: (B, Q, S), shared by all
            heads, or (B * heads, Q, S), batch-major as the module takes it.

    Returns:
        Attention output after the output projection, shape (B, Q, C).
    """
    if not (attn.batch_first and attn._qkv_same_embed_dim):
        raise ValueError('multihead_attention needs a batch_first module with equal '
                         'query/key/value widths')
    b, q_len, c = query.shape
    heads = attn.num_heads
    w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = (None, None, None) if attn.in_proj_bias is None else attn.in_proj_bias.chunk(3)

    def split_heads(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return F.linear(x, weight, bias).view(b, x.shape[1], heads, c // heads).transpose(1, 2)

    q, k, v = (split_heads(x, w, bias) for x, w, bias in ((query, w_q, b_q), (key, w_k, b_k),
                                                        (value, w_v, b_v)))
    mask = None
    if blocked is not None:
        if blocked.shape[0] == b * heads:
            blocked = blocked.view(b, heads, q_len, -1)
        elif blocked.shape[0] == b:
            blocked = blocked[:, None]
        else:
            raise ValueError(f'attention mask of shape {tuple(blocked.shape)} for batch {b} '
                             f'and {heads} heads')
        mask = ~blocked  # scaled_dot_product_attention's booleans say where to attend
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                         dropout_p=attn.dropout if attn.training else 0.0)
    return attn.out_proj(out.transpose(1, 2).reshape(b, q_len, c))


def feed_forward(x: Tensor, linear1: nn.Linear, linear2: nn.Linear, dropout: nn.Module,
                 chunk_rows: int = 1024) -> Tensor:
    """``linear2(dropout(relu(linear1(x))))`` with the ReLU applied in place.

    The linear layers run on the flattened (N, C) rows, so the hidden
    activation is a tensor of its own rather than a view of the matmul output:
    an in-place op on such a view would make autograd clone it and rebuild it
    in the backward pass (``CopySlices``), which costs more than the
    allocation it saves. ``addmm`` does not keep its output for backward, so
    the in-place ReLU is safe under autograd.

    Without autograd (inference) the rows run in chunks of ``chunk_rows``: the
    hidden activation is then a few MiB reused from the heap instead of, for
    the 6-layer encoder at 512², a fresh 22 MiB block per layer that the
    system has to map page by page.

    Args:
        x: Input (..., C_in).
        linear1: First layer, C_in -> C_hidden.
        linear2: Second layer, C_hidden -> C_out.
        dropout: Applied to the hidden activation.
        chunk_rows: Rows per chunk without autograd.

    Returns:
        Output (..., C_out).
    """
    rows = x.reshape(-1, x.shape[-1])
    if needs_graph([x], linear1, linear2) or rows.shape[0] <= chunk_rows:
        hidden = F.relu(linear1(rows), inplace=True)
        return linear2(dropout(hidden)).view(*x.shape[:-1], -1)
    out = rows.new_empty(rows.shape[0], linear2.out_features)
    for start in range(0, rows.shape[0], chunk_rows):
        hidden = F.relu(linear1(rows[start:start + chunk_rows]), inplace=True)
        out[start:start + chunk_rows] = linear2(dropout(hidden))
    return out.view(*x.shape[:-1], -1)


def inference_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear(x)`` for inference on CPU: the product, then the bias added in place.

    PyTorch's CPU ``addmm`` writes the broadcast bias into the output and
    accumulates the product onto it; for narrow inputs that is slower than a
    plain product followed by an in-place add (Swin-T's first stage at 512²,
    16384 x 96 rows times 96 x 384: 7.8 against 5.7 ms). Equal to
    ``linear(x)`` up to float rounding. Elsewhere (autograd, CUDA, where the
    bias is fused into the product) it is ``linear(x)``.

    Args:
        x: Input (..., C_in).
        linear: The layer, C_in -> C_out.

    Returns:
        Output (..., C_out), a tensor of its own (safe to modify in place).
    """
    if x.device.type != 'cpu' or needs_graph([x], linear) or linear.bias is None:
        return linear(x)
    rows = x.reshape(-1, x.shape[-1])
    out = torch.mm(rows, linear.weight.t()).add_(linear.bias)
    return out.view(*x.shape[:-1], linear.out_features)


def needs_graph(tensors: Sequence[Tensor], *modules: nn.Module) -> bool:
    """Whether autograd would record an op on ``tensors`` and the modules' parameters."""
    return torch.is_grad_enabled() and (
        any(t.requires_grad for t in tensors) or
        any(p.requires_grad for m in modules for p in m.parameters()))


def _xavier_init(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class SelfAttentionLayer(nn.Module):
    """``norm(x + SelfAttn(q=k=x+pos, v=x))``.

    Args:
        embed_dims: Width C.
        num_heads: Attention heads.
        dropout: Attention dropout.
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self, x: Tensor, query_pos: Optional[Tensor] = None) -> Tensor:
        """Args: x (B, Q, C); query_pos (B, Q, C). Returns (B, Q, C)."""
        q = k = _with_pos(x, query_pos)
        out = self.self_attn(q, k, value=x, need_weights=False)[0]
        return self.norm(x + self.dropout(out))


class CrossAttentionLayer(nn.Module):
    """``norm(x + CrossAttn(q=x+query_pos, k=mem+pos, v=mem, mask))``.

    Args:
        embed_dims: Width C.
        num_heads: Attention heads.
        dropout: Attention dropout.
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                                    batch_first=True)
        self.norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self,
                x: Tensor,
                memory: Tensor,
                attn_mask: Optional[Tensor] = None,
                pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        """Cross-attend queries to memory.

        Args:
            x: Queries, shape (B, Q, C).
            memory: Keys/values, shape (B, S, C).
            attn_mask: True where attention is NOT allowed, shape (B, Q, S)
                (shared by all heads) or (B * heads, Q, S).
            pos: Memory positional encoding, shape (B, S, C).
            query_pos: Query positional encoding, shape (B, Q, C).

        Returns:
            Updated queries, shape (B, Q, C).
        """
        out = multihead_attention(self.multihead_attn, _with_pos(x, query_pos),
                                  _with_pos(memory, pos), memory, attn_mask)
        return self.norm(x + self.dropout(out))


class FFNLayer(nn.Module):
    """``norm(x + linear2(dropout(relu(linear1(x)))))``.

    Args:
        embed_dims: Width C.
        feedforward_dims: Hidden width of the FFN.
        dropout: Dropout after the activation and the second linear layer.
    """

    def __init__(self, embed_dims: int, feedforward_dims: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(embed_dims, feedforward_dims)
        self.linear2 = nn.Linear(feedforward_dims, embed_dims)
        self.norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (B, Q, C). Returns (B, Q, C)."""
        out = feed_forward(x, self.linear1, self.linear2, self.dropout)
        return self.norm(x + self.dropout(out))


class MLP(nn.Module):
    """A stack of linear layers with ReLU between them (``layers.{i}``).

    Args:
        in_dims: Input width.
        hidden_dims: Hidden width.
        out_dims: Output width.
        num_layers: Number of linear layers.
    """

    def __init__(self, in_dims: int, hidden_dims: int, out_dims: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [in_dims] + [hidden_dims] * (num_layers - 1)
        dims_out = [hidden_dims] * (num_layers - 1) + [out_dims]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (..., in_dims). Returns (..., out_dims)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
