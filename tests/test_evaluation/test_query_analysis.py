"""best_query_records / summarise_records against a brute-force loop."""
import numpy as np
import pytest
import torch

from mmseg_maskformer.evaluation.functional import best_query_records, summarise_records


def _brute_force(cls_logits, mask_logits, gt, ignore_index):
    probs = torch.softmax(cls_logits.double(), -1).numpy()[:, :-1]
    masks = mask_logits.numpy() > 0
    gt = gt.numpy()
    valid = gt != ignore_index
    out = []
    for label in sorted(set(gt[valid].tolist())):
        best_iou, best_q = -1.0, None
        for q in range(masks.shape[0]):
            pred = masks[q] & valid
            inter = np.logical_and(pred, gt == label).sum()
            union = np.logical_or(pred, gt == label).sum()
            if inter / union > best_iou:  # first query wins ties, as argmax does
                best_iou, best_q = inter / union, q
        out.append(dict(label=label, mask_iou=best_iou,
                        class_right=float(probs[best_q].argmax() == label),
                        prob=probs[best_q, label], max_prob=probs[:, label].max()))
    return out


@pytest.mark.parametrize('seed', range(5))
def test_matches_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    num_queries, num_classes, size = 6, 4, (9, 11)
    gt = torch.randint(0, num_classes, size, generator=gen)
    gt[torch.rand(size, generator=gen) < 0.2] = 255
    cls_logits = torch.randn(num_queries, num_classes + 1, generator=gen) * 3
    mask_logits = torch.randn(num_queries, *size, generator=gen)
    mask_logits[0] = torch.where(gt == int(gt[0, 0]) if gt[0, 0] != 255 else gt == 1, 5.0, -5.0)
    got = best_query_records(cls_logits, mask_logits, gt, ignore_index=255)
    want = _brute_force(cls_logits, mask_logits, gt, 255)
    assert [r['label'] for r in got] == [r['label'] for r in want]
    for g, w in zip(got, want):
        for key in ('mask_iou', 'class_right', 'prob', 'max_prob'):
            assert g[key] == pytest.approx(w[key], abs=1e-6), key


def test_perfect_prediction():
    gt = torch.tensor([[0, 0, 2], [0, 255, 2]])
    masks = torch.stack([torch.where(gt == 0, 9.0, -9.0), torch.where(gt == 2, 9.0, -9.0)])
    cls_logits = torch.tensor([[9.0, -9, -9, -9], [-9, -9, 9.0, -9]])
    records = best_query_records(cls_logits, masks, gt)
    assert [(r['label'], r['mask_iou'], r['class_right']) for r in records] == [
        (0, 1.0, 1.0), (2, 1.0, 1.0)]
    summary = summarise_records(records + records)
    assert summary[0]['segments'] == 2 and summary[2]['mask_iou'] == 1.0


def test_wrong_class_right_mask():
    gt = torch.zeros(4, 4, dtype=torch.long)
    records = best_query_records(torch.tensor([[-5.0, 5.0, -5.0]]), torch.full((1, 4, 4), 3.0), gt)
    assert records[0]['mask_iou'] == 1.0 and records[0]['class_right'] == 0.0
    assert records[0]['prob'] < 0.01


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='share'):
        best_query_records(torch.zeros(2, 3), torch.zeros(2, 4, 4), torch.zeros(4, 5))
    with pytest.raises(ValueError, match='masks'):
        best_query_records(torch.zeros(3, 3), torch.zeros(2, 4, 4), torch.zeros(4, 4))
