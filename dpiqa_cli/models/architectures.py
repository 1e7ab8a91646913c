"""Architecture configs of the teacher's components: Stable Diffusion v1.5, its T2I adapter and CLIP ViT-L/14's
text tower, plus miniatures with the same topology for tests. Plain data: the registry reads them without
importing torch."""

# torchvision's EfficientNet, which the released student uses, builds its BatchNorm layers with eps 1e-3 and
# momentum 0.01 (timm's defaults: 1e-5 and 0.1): the paper's student matches both, so it also trains alike.
TORCHVISION_BN_EPS, TORCHVISION_BN_MOMENTUM = 1e-3, 0.01

SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CLIP_HUB_ID = "openai/clip-vit-large-patch14"

# Stable Diffusion v1.5 component configs (as in the model's unet/ and vae/ config.json files).
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
SD15_ADAPTER = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8)
# CLIP ViT-L/14 text tower with its projection (what `get_text_features` runs).
CLIP_L14_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
)

# A miniature with the same topology, for tests: 64 px input, 8x8 latent, 8x8 feature map.
TINY_UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32, 64, 64),
    cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
# scaling_factor: SD's 0.18215 gives its trained VAE unit-variance latents; this random one needs 4 for the
# same (measured latent std ~0.25), or the U-Net's main input is nearly constant and only the adapter learns.
TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=64, norm_num_groups=4,
    block_out_channels=(8, 8, 16, 16), scaling_factor=4.0,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
TINY_ADAPTER = dict(in_channels=3, channels=[32, 32, 64, 64], num_res_blocks=1, downscale_factor=8)
TINY_CLIP_TEXT = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2,
    num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
)
