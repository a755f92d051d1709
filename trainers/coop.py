"""CoOp (Zhou et al., IJCV 2022): learnable context vectors in the text prompt, CLIP frozen.

    logits = exp(s) * cos(f(x), g([ctx_1..ctx_M, CLASS]))        L = CE(logits, y)
"""
from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer
from .prompts import TextContext


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    cfg_node = "COOP"
    model_name = "prompt_learner"

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = TextContext(clip_model, classnames, n_ctx=t.N_CTX, ctx_init=t.CTX_INIT, rule="coop",
                              csc=t.CSC, position=t.CLASS_TOKEN_POSITION)
        print(f'Initial context: "{learner.prompt_prefix}"')
        print(f"Number of context words (tokens): {learner.n_ctx}")
        return learner

    def registered_module(self):
        return self.model.prompt_learner

    def compute_loss(self, images, labels):
        logits = self.model(images)
        return self.cross_entropy(logits, labels), {}, logits
