# Swin Transformer backbones of the official Swin releases (converted for mmseg under
# pretrain/). A config that swaps its backbone for one of them:
#   _base_ = ['./<parent>.py', '../_base_/models/swin_backbones.py']
#   model = dict(backbone={{_base_.swin_t}}, decode_head=dict(in_channels=[96, 192, 384, 768]))
# Output channels: Swin-T/S 96-768, Swin-B 128-1024, Swin-L 192-1536.
_swin = dict(
    _delete_=True,
    type='SwinTransformerSDPA',
    patch_size=4,
    mlp_ratio=4,
    strides=(4, 2, 2, 2),
    out_indices=(0, 1, 2, 3),
    qkv_bias=True,
    qk_scale=None,
    patch_norm=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.3,
    use_abs_pos_embed=False,
    act_cfg=dict(type='GELU'),
    norm_cfg=dict(type='LN'))
# ImageNet-1K, window 7, 224 pretraining
swin_t = dict(
    _swin, pretrain_img_size=224, embed_dims=96, window_size=7, depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    init_cfg=dict(type='Pretrained', checkpoint='pretrain/swin_tiny_patch4_window7_224.pth'))
swin_s = dict(
    swin_t, depths=[2, 2, 18, 2],
    init_cfg=dict(type='Pretrained', checkpoint='pretrain/swin_small_patch4_window7_224.pth'))
# window 12, 384 pretraining; ImageNet-1K or ImageNet-21K
swin_b_384 = dict(
    _swin, pretrain_img_size=384, embed_dims=128, window_size=12, depths=[2, 2, 18, 2],
    num_heads=[4, 8, 16, 32],
    init_cfg=dict(type='Pretrained', checkpoint='pretrain/swin_base_patch4_window12_384.pth'))
swin_b_384_in21k = dict(
    swin_b_384,
    init_cfg=dict(type='Pretrained',
                  checkpoint='pretrain/swin_base_patch4_window12_384_22k.pth'))
swin_l_384_in21k = dict(
    swin_b_384, embed_dims=192, num_heads=[6, 12, 24, 48],
    init_cfg=dict(type='Pretrained',
                  checkpoint='pretrain/swin_large_patch4_window12_384_22k.pth'))
