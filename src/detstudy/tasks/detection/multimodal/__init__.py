"""The multimodal extension: class descriptions, text embeddings, text fusion, phases."""
