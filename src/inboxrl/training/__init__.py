"""Training: GRPO with LoRA through TRL. The only part of inboxrl that imports TRL."""
