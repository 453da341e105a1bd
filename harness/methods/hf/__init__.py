"""Hugging Face pieces shared by the HF methods: model factory, Trainer subclass, losses."""
