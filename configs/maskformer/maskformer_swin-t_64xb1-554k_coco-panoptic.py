# MaskFormer Swin-T (IN-1K, window 7, 224 pretraining), COCO panoptic, official recipe: the
# R-50 config's data, length and milestone with the FPN pixel decoder (no "+ 6 Enc") and the
# transformer decoder on res5, AdamW lr 6e-5, weight decay 0.01 (none on norms, position
# tables and query embeddings), backbone at the full learning rate, 1500-iteration linear
# warm-up. Paper: 47.7 PQ, 42M parameters.
_base_ = ['./maskformer_r50_64xb1-554k_coco-panoptic.py', '../_base_/models/swin_backbones.py']
# Official Swin release converted for mmseg's SwinTransformer.
model = dict(
    backbone={{_base_.swin_t}},
    decode_head=dict(
        in_channels=[96, 192, 384, 768],
        pixel_decoder=dict(_delete_=True, type='FPNPixelDecoder', feat_channels=256,
                           out_channels=256, num_groups=32),
        transformer_in_feature='res5',
        transformer_decoder=dict(enforce_input_proj=True)))
no_decay = dict(decay_mult=0.0)
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, weight_decay=0.01),
    paramwise_cfg=dict(
        _delete_=True,
        custom_keys={
            'absolute_pos_embed': no_decay,
            'relative_position_bias_table': no_decay,
            'query_embed': no_decay,
        },
        norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='MultiStepLR', begin=0, end={{_base_.max_iters}}, by_epoch=False,
         milestones=[369600], gamma=0.1)
]
