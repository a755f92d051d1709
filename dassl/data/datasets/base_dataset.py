"""``Datum`` and ``DatasetBase``: the data-source API every dataset file is written against.

``Datum`` lives at ``dassl.data.datasets.base_dataset.Datum`` with the instance attributes
``_impath``, ``_label``, ``_domain``, ``_classname`` so that few-shot caches pickled by real Dassl
unpickle here and ours unpickle there.
"""
import os.path as osp
import random
import tarfile
import zipfile
from collections import defaultdict

from dassl.utils import check_isfile


class Datum:
    """One labelled image.

    Unlike Dassl, construction does not ``stat`` the file (a 1.28 M-entry split would take minutes);
    datasets check existence in bulk (``datasets.check`` / the readers) and the loader names an
    unreadable file when it is opened. Pass ``check_file=True`` for Dassl's per-item assertion.
    """

    def __init__(self, impath="", label=0, domain=0, classname="", check_file=False):
        assert isinstance(impath, str), f"impath must be a str, got {type(impath).__name__}"
        if check_file:
            assert check_isfile(impath), f'No file found at "{impath}"'
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self):
        return self._impath

    @property
    def label(self):
        return self._label

    @property
    def domain(self):
        return self._domain

    @property
    def classname(self):
        return self._classname

    def __repr__(self):
        return (f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, "
                f"classname={self._classname!r})")

    def __eq__(self, other):
        return isinstance(other, Datum) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((self._impath, self._label, self._domain, self._classname))


class DatasetBase:
    """A dataset = four lists of ``Datum``: ``train_x``, ``train_u``, ``val``, ``test``.

    ``num_classes``, ``lab2cname`` and ``classnames`` are derived from ``train_x``.
    """

    dataset_dir = ""  # the directory name under DATASET.ROOT
    domains = []  # names of the domains, if any

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        """``max(label) + 1`` over ``data_source``."""
        if not data_source:
            raise ValueError("Cannot count classes of an empty train_x: the training split has no images")
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        """``(dict label -> classname, list of classnames ordered by label)``."""
        container = {(item.label, item.classname) for item in data_source}
        mapping = {label: classname for label, classname in container}
        labels = sorted(mapping.keys())
        classnames = [mapping[label] for label in labels]
        return mapping, classnames

    def check_input_domains(self, source_domains, target_domains):
        assert len(source_domains) > 0, "source_domains (list) is empty"
        assert len(target_domains) > 0, "target_domains (list) is empty"
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains):
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(
                    f"Input domain must belong to {self.domains}, but got [{domain}]"
                )

    def download_data(self, url, dst, from_gdrive=True):
        """Download (needs ``gdown`` for Google Drive links) and extract next to ``dst``."""
        if not osp.exists(osp.dirname(dst)):
            import os
            os.makedirs(osp.dirname(dst))
        if from_gdrive:
            try:
                import gdown
            except ImportError as e:
                raise ImportError("download_data needs gdown: pip install gdown") from e
            gdown.download(url, dst, quiet=False)
        else:
            from dassl.utils import download_url
            download_url(url, dst)
        print("Extracting file ...")
        if dst.endswith(".zip"):
            with zipfile.ZipFile(dst, "r") as zf:
                zf.extractall(osp.dirname(dst))
        elif dst.endswith(".tar"):
            with tarfile.open(dst, "r:") as tar:
                tar.extractall(osp.dirname(dst))
        elif dst.endswith(".tar.gz"):
            with tarfile.open(dst, "r:gz") as tar:
                tar.extractall(osp.dirname(dst))
        else:
            raise NotImplementedError(f"Cannot extract {dst}: unknown archive type")
        print(f"File extracted to {osp.dirname(dst)}")

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1, repeat=False):
        """Sample ``num_shots`` items per label with Python's global ``random`` (Dassl's algorithm).

        Per source: group by label in first-appearance order; ``random.sample(items, K)`` when a label
        has at least K items, else all items (or ``random.choices`` with ``repeat``). Returns one list,
        or a list of lists for several sources.
        """
        if num_shots < 1:
            if len(data_sources) == 1:
                return data_sources[0]
            return data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            tracker = self.split_dataset_by_label(data_source)
            dataset = []
            for label, items in tracker.items():
                if len(items) >= num_shots:
                    sampled_items = random.sample(items, num_shots)
                elif repeat:
                    sampled_items = random.choices(items, k=num_shots)
                else:
                    sampled_items = items
                dataset.extend(sampled_items)
            output.append(dataset)
        if len(output) == 1:
            return output[0]
        return output

    @staticmethod
    def split_dataset_by_label(data_source):
        """``defaultdict(list)`` label -> items, keys in first-appearance order."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source):
        """``defaultdict(list)`` domain -> items, keys in first-appearance order."""
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
