"""The `lora-sst2` command and CI tools: never imported by a stage, so editing them retrains
nothing."""
