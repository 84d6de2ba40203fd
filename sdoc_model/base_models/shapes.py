"""Model shapes: every architecture size the harness builds is defined here.

Each is a set of `LlamaConfig` keyword arguments. A model built from a tokenizer (the tiny base
model) takes its vocabulary size from the tokenizer instead.
"""

TINY, SMOLLM2_135M, LLAMA2_7B = "tiny", "smollm2-135m", "llama2-7b"
MODEL_SHAPES = {
    # The test and CI base model: seconds to train on a CPU.
    TINY: dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        vocab_size=1024,
    ),
    # SmolLM2-135M(-Instruct), the demo's base model.
    SMOLLM2_135M: dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        vocab_size=49152,
    ),
    # Llama-2-7B: the adapted layers of a 7B model.
    LLAMA2_7B: dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        vocab_size=32000,
    ),
}
