"""A tiny model that ships its own modeling code, as HuatuoGPT2 (Baichuan2) does.

This file is copied into the model folder as `modeling_tiny_remote.py`, which the folder's
config.json names in `auto_map`: transformers builds the model only with
`trust_remote_code=True`. The paper rehearsal's stand-in for a remote-code external baseline
(config/rehearsal.yaml). It imports nothing but transformers, as remote code must.
"""

from transformers import LlamaConfig, LlamaForCausalLM


class TinyRemoteConfig(LlamaConfig):
    model_type = "sdoc_tiny_remote"


class TinyRemoteForCausalLM(LlamaForCausalLM):
    config_class = TinyRemoteConfig

    # As Baichuan2's model class: loading arguments the model does not know are accepted and
    # dropped (lm-eval passes gguf_file=None, which transformers 4.33 hands to the model).
    def __init__(self, config, *model_args, **model_kwargs):
        super().__init__(config)
