# Mask2Former Swin-L (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640:
# the Swin-B recipe with the large backbone, trained on 16 GPUs x 1 image (batch 16, as the
# official Swin-L models). Reported: 56.1 mIoU (57.3 ms+flip).
_base_ = './mask2former_swin-b-in21k-384_8xb2-160k_ade20k-640x640.py'
pretrained = 'pretrain/swin_large_patch4_window12_384_22k.pth'
model = dict(
    backbone=dict(embed_dims=192, num_heads=[6, 12, 24, 48],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
train_dataloader = dict(batch_size=1)
