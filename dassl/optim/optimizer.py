"""``build_optimizer``: a torch optimizer from the ``OPTIM`` config node."""
import torch
import torch.nn as nn

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


def build_optimizer(model, optim_cfg, param_groups=None):
    """Build ``optim_cfg.NAME`` over ``model``'s parameters (or ``param_groups`` when given).

    As Dassl, *all* parameters are passed, frozen ones included (they never get gradients, so the
    optimizer skips them). ``STAGED_LR`` gives layers not in ``NEW_LAYERS`` ``LR * BASE_LR_MULT``.
    """
    name = optim_cfg.NAME
    lr = optim_cfg.LR
    weight_decay = optim_cfg.WEIGHT_DECAY
    if name not in AVAI_OPTIMS:
        raise ValueError(f"OPTIM.NAME must be one of {AVAI_OPTIMS}, but got {name}")
    if param_groups is not None and optim_cfg.STAGED_LR:
        import warnings
        warnings.warn("STAGED_LR is ignored because param_groups are given")

    if param_groups is None:
        if optim_cfg.STAGED_LR:
            if not isinstance(model, nn.Module):
                raise TypeError("When STAGED_LR is True, model given to build_optimizer() must be an nn.Module")
            if isinstance(model, nn.DataParallel):
                model = model.module
            new_layers = optim_cfg.NEW_LAYERS
            if isinstance(new_layers, str):
                new_layers = [new_layers]
            if new_layers is None or len(new_layers) == 0:
                import warnings
                warnings.warn("OPTIM.NEW_LAYERS is empty (STAGED_LR is useless)")
            base_params, new_params = [], []
            for child_name, module in model.named_children():
                if child_name in new_layers:
                    new_params += list(module.parameters())
                else:
                    base_params += list(module.parameters())
            param_groups = [
                {"params": base_params, "lr": lr * optim_cfg.BASE_LR_MULT},
                {"params": new_params},
            ]
        elif isinstance(model, nn.Module):
            param_groups = model.parameters()
        else:
            param_groups = model

    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay, betas=betas)
    if name == "amsgrad":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay, betas=betas, amsgrad=True)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=weight_decay,
                               dampening=optim_cfg.SGD_DAMPNING, nesterov=optim_cfg.SGD_NESTEROV)
    if name == "rmsprop":
        return torch.optim.RMSprop(param_groups, lr=lr, momentum=optim_cfg.MOMENTUM,
                                   weight_decay=weight_decay, alpha=optim_cfg.RMSPROP_ALPHA)
    if name == "radam":
        # torch's RAdam implements the same rectified Adam as Dassl's own copy.
        return torch.optim.RAdam(param_groups, lr=lr, weight_decay=weight_decay, betas=betas)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay, betas=betas)
