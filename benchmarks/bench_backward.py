import time, torch, sys
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
torch.set_num_threads(2)
m = AutoModelForCausalLM.from_pretrained('/root/.cache/inboxrl/hf/qwen2.5-coder-0.5b', dtype=torch.float32)
m = get_peft_model(m, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]))
m.train()
ids = torch.randint(0, 150000, (1, 1500))
def step(bf16):
    t=time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = m(input_ids=ids)
        logp = torch.log_softmax(out.logits.float(), -1)[0, :-1].gather(-1, ids[0,1:,None]).mean()
    (-logp).backward()
    m.zero_grad()
    return time.perf_counter()-t
for bf16 in (False, True, False, True):
    step(bf16)
    print("bf16" if bf16 else "fp32", [round(step(bf16),2) for _ in range(2)], flush=True)
