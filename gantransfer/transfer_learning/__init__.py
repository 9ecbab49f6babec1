"""Transfer to few-label classification: trunks, heads, ImageNet backbones, strategies."""
