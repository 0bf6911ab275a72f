"""The multimodal extension: text encoder, class embeddings, text fusion, what each run of the
three strategies unfreezes and the steps that train them."""
