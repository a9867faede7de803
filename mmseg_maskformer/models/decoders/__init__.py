"""Transformer decoders (plain nn.Modules, built by the heads)."""
from .masked_attention_decoder import MaskedAttentionDecoder, masked_attention_mask
from .standard_transformer_decoder import (DETRDecoder, DETRDecoderLayer,
                                           StandardTransformerDecoder)

__all__ = [
    'MaskedAttentionDecoder', 'masked_attention_mask', 'StandardTransformerDecoder',
    'DETRDecoder', 'DETRDecoderLayer'
]
