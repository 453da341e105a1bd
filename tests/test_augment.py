from harness.data.augment import augment, variants
from harness.config import AugmentConfig
from harness.data.folds import make_folds
from harness.data.synthetic import make_psydefconv


def test_variants_are_deterministic_distinct_and_keep_source():
    ex = make_psydefconv(n_groups=20)
    src = next(e for e in ex if e.label == 2)
    a, b = variants(src, 3, seed=1), variants(src, 3, seed=1)
    assert a == b and len(a) == 3
    texts = [v.target for v in a]
    assert len(set(texts)) == 3 and src.target not in texts
    for v in a:
        assert v.source_id == src.id and v.label == src.label and v.group == src.group
        assert v.dialogue[:-1] == src.dialogue[:-1]  # only the target utterance changes
        assert v.dialogue[-1].text == v.target
    assert variants(src, 3, seed=2) != a


def test_only_configured_classes_are_augmented():
    ex = make_psydefconv(n_groups=30)
    out = augment(ex, AugmentConfig(enabled=True, classes=[2, 8], k=2))
    extra = out[len(ex):]
    assert extra and {v.label for v in extra} <= {2, 8}
    assert len(extra) <= 2 * sum(e.label in (2, 8) for e in ex)
    assert augment(ex, AugmentConfig(enabled=False, classes=[2], k=2)) == ex


def test_no_validation_row_or_variant_enters_training():
    ex = make_psydefconv(n_groups=40)
    folds = make_folds(ex, 5, 0, "dialogue_id")
    cfg = AugmentConfig(enabled=True, classes=[2, 3, 4, 5, 8], k=3)
    for k in range(5):
        train, val = folds.split(ex, k)
        train_aug = augment(train, cfg)
        val_ids = {e.id for e in val}
        val_groups = {e.group for e in val}
        assert not {e.source_id or e.id for e in train_aug} & val_ids
        assert not {e.group for e in train_aug} & val_groups
        # and variants of validation rows, were they made, would land in validation
        all_aug = augment(ex, cfg)
        tr2, va2 = folds.split(all_aug, k)
        assert not {e.source_id or e.id for e in tr2} & val_ids
