"""A validation set scored under another name, so that a second network (the teacher, the training weights next
to their EMA) gets its own rows in the logs and val_metrics.jsonl without changing the set itself."""


class RenamedDataset:
    """A validation dataset seen under another name (everything else is the dataset's own)."""

    def __init__(self, dataset, name):
        self.dataset = dataset
        self.opt = dict(dataset.opt, name=name)

    def __getattr__(self, attribute):
        if attribute == 'dataset':  # not set yet (copy / unpickle)
            raise AttributeError(attribute)
        return getattr(self.dataset, attribute)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]


class RenamedLoader:
    """A validation loader whose dataset is seen under another name; iterates the loader itself."""

    def __init__(self, loader, name):
        self.loader = loader
        self.dataset = RenamedDataset(loader.dataset, name)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)
