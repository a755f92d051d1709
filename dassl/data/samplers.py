"""``build_sampler``: torch's Random/Sequential samplers plus Dassl's domain/class samplers."""
import copy
import random
from collections import defaultdict

from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler


def _draw_by_domain(domain_dict, pick_domains, n_per_domain):
    """Indices batch by batch: for each domain of ``pick_domains()``, ``n_per_domain`` random unused items;
    stop once a drawn domain has fewer than ``n_per_domain`` items left (Dassl's rule)."""
    remaining = copy.deepcopy(domain_dict)
    final_idxs = []
    stop_sampling = False
    while not stop_sampling:
        for domain in pick_domains():
            selected = random.sample(remaining[domain], n_per_domain)
            final_idxs.extend(selected)
            for idx in selected:
                remaining[domain].remove(idx)
            if len(remaining[domain]) < n_per_domain:
                stop_sampling = True
    return final_idxs


class RandomDomainSampler(Sampler):
    """Each batch: ``n_domain`` random domains x ``batch_size // n_domain`` random items each."""

    def __init__(self, data_source, batch_size, n_domain):
        self.data_source = data_source
        self.domain_dict = defaultdict(list)
        for i, item in enumerate(data_source):
            self.domain_dict[item.domain].append(i)
        self.domains = list(self.domain_dict.keys())
        if n_domain is None or n_domain <= 0:
            n_domain = len(self.domains)
        assert batch_size % n_domain == 0
        self.n_img_per_domain = batch_size // n_domain
        self.batch_size = batch_size
        self.n_domain = n_domain
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        return iter(_draw_by_domain(self.domain_dict, lambda: random.sample(self.domains, self.n_domain),
                                    self.n_img_per_domain))

    def __len__(self):
        return self.length


class SeqDomainSampler(Sampler):
    """Each batch: every domain in order, ``batch_size // n_domains`` random items each."""

    def __init__(self, data_source, batch_size):
        self.data_source = data_source
        self.domain_dict = defaultdict(list)
        for i, item in enumerate(data_source):
            self.domain_dict[item.domain].append(i)
        self.domains = sorted(self.domain_dict.keys())
        n_domain = len(self.domains)
        self.n_img_per_domain = batch_size // n_domain
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        return iter(_draw_by_domain(self.domain_dict, lambda: self.domains, self.n_img_per_domain))

    def __len__(self):
        return self.length


class RandomClassSampler(Sampler):
    """Each batch: ``batch_size // n_ins`` random classes x ``n_ins`` items each."""

    def __init__(self, data_source, batch_size, n_ins):
        if batch_size < n_ins:
            raise ValueError(f"batch_size={batch_size} must be no less than n_ins={n_ins}")
        self.data_source = data_source
        self.n_ins = n_ins
        self.ncls_per_batch = batch_size // n_ins
        self.index_dic = defaultdict(list)
        for index, item in enumerate(data_source):
            self.index_dic[item.label].append(index)
        self.labels = list(self.index_dic.keys())
        assert len(self.labels) >= self.ncls_per_batch
        self.length = len(list(self.__iter__()))

    def __iter__(self):
        batch_idxs_dict = defaultdict(list)
        for label in self.labels:
            idxs = copy.deepcopy(self.index_dic[label])
            if len(idxs) < self.n_ins:
                idxs = random.choices(idxs, k=self.n_ins)
            random.shuffle(idxs)
            batch_idxs = []
            for idx in idxs:
                batch_idxs.append(idx)
                if len(batch_idxs) == self.n_ins:
                    batch_idxs_dict[label].append(batch_idxs)
                    batch_idxs = []
        avai_labels = copy.deepcopy(self.labels)
        final_idxs = []
        while len(avai_labels) >= self.ncls_per_batch:
            selected_labels = random.sample(avai_labels, self.ncls_per_batch)
            for label in selected_labels:
                batch_idxs = batch_idxs_dict[label].pop(0)
                final_idxs.extend(batch_idxs)
                if len(batch_idxs_dict[label]) == 0:
                    avai_labels.remove(label)
        return iter(final_idxs)

    def __len__(self):
        return self.length


def build_sampler(sampler_type, cfg=None, data_source=None, batch_size=32, n_domain=0, n_ins=16):
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    if sampler_type == "RandomDomainSampler":
        return RandomDomainSampler(data_source, batch_size, n_domain)
    if sampler_type == "SeqDomainSampler":
        return SeqDomainSampler(data_source, batch_size)
    if sampler_type == "RandomClassSampler":
        return RandomClassSampler(data_source, batch_size, n_ins)
    raise ValueError(f"Unknown sampler type: {sampler_type}")
