"""Independent vision-language prompting (IVLP; PromptSRC paper's baseline).

Deep prompts in both encoders (``VLPromptLearner``), trained with cross-entropy only:
    L = CE(exp(s) * cos(f_p(x), g_p(c)), y)
"""
from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer
from .prompted_clip import VLPromptLearner


class VLPromptTrainer(PromptTrainer):
    """Trainers built on ``VLPromptLearner`` (IVLP, PromptSRC, Prompt-OT) read the same config keys."""

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = VLPromptLearner(clip_model, classnames, n_ctx_text=t.N_CTX_TEXT, n_ctx_vision=t.N_CTX_VISION,
                                  ctx_init=t.CTX_INIT, depth_text=t.PROMPT_DEPTH_TEXT,
                                  depth_vision=t.PROMPT_DEPTH_VISION)
        print("Independent V-L design")
        print(f'Initial text context: "{learner.text.prompt_prefix}"')
        print(f"Number of context words (tokens) for Language prompting: {t.N_CTX_TEXT}")
        print(f"Number of context words (tokens) for Vision prompting: {t.N_CTX_VISION}")
        return learner

    def prompted_outputs(self, images):
        """Prompted ``image [B, E]`` and ``text [C, E]`` features and their ``logits [B, C]``."""
        image = self.model.image_features(images)
        text = self.model.text_features()
        return image, text, self.model.logits(image, text)


@TRAINER_REGISTRY.register()
class IVLP(VLPromptTrainer):
    cfg_node = "IVLP"

    def compute_loss(self, images, labels):
        _, _, logits = self.prompted_outputs(images)
        return self.cross_entropy(logits, labels), {}, logits
