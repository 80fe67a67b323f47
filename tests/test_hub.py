"""The hub dataset written into an empty data.dir."""

from lora_core.hub import ensure_raw


def test_hub_download_writes_class_names_and_skips_hidden_test_labels(tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    hub = DatasetDict(
        {
            "train": Dataset.from_dict({"sentence": ["a", "b"], "label": [1, 0]}, features),
            "validation": Dataset.from_dict({"sentence": ["c"], "label": [0]}, features),
            "test": Dataset.from_dict({"sentence": ["d"], "label": [-1]}, features),
        }
    )
    hub.save_to_disk(tmp_path / "hub")
    import datasets

    original = datasets.load_dataset
    datasets.load_dataset = lambda source, config: datasets.load_from_disk(source)
    try:
        found = ensure_raw(tmp_path / "raw", str(tmp_path / "hub"), "any")
    finally:
        datasets.load_dataset = original
    assert found == {
        "train": tmp_path / "raw/train.jsonl",
        "validation": tmp_path / "raw/validation.jsonl",
    }
    assert (tmp_path / "raw/train.jsonl").read_text() == (
        '{"sentence": "a", "label": "pos"}\n{"sentence": "b", "label": "neg"}\n'
    )
