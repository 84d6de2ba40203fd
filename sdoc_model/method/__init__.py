"""The method alone, usable without the harness (`from sdoc_model import ...`):

config        SparseDoctorConfig: every knob, validated
layer         LoRAMoELinear: E LoRA experts behind a top-k router, in two GEMMs
losses        load balancing, router z-loss, supervised contrastive loss
memory_queue  ExpertMemoryQueue: the fixed-size FIFO of past expert representations
model         SparseDoctorModel: injection into a causal LM, auxiliary losses, save/load
variants      the compared methods (base, lora, the LoRA-MoE ablation ladder)
reference     naive per-expert loops, the reference the tests and benchmarks compare with
hf_config     the config.json that makes an adapter folder load in transformers / lm_eval
hf_model      the loader transformers calls for such a folder
"""
