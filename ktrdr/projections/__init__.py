"""Read models and the projection runner (inline + catch-up, rebuild, verify)."""
