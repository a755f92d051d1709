"""``compute_accuracy``: top-k accuracy in percent."""


def compute_accuracy(output, target, topk=(1,)):
    """Top-k accuracy of ``output [B, C]`` against ``target [B]``: a list of 1-element tensors, in percent."""
    maxk = max(topk)
    batch_size = target.size(0)
    if isinstance(output, (tuple, list)):
        output = output[0]
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res
