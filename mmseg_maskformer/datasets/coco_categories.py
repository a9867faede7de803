"""The 133 categories of COCO panoptic segmentation (80 things, 53 stuff).

:data:`COCO_PANOPTIC_CATEGORIES` is the ``categories`` list of the official
``panoptic_coco_categories.json`` of the COCO panoptic API, in its order (ids
increasing, the 80 things with ids 1-90 first, then the 53 stuff categories
with ids 92-200). Every entry is ``{id, name, supercategory, isthing, color}``
with ``color`` an RGB triple.

The COCO *instance* annotation files list only the 80 thing categories, as
``{id, name, supercategory}``; :func:`coco_instance_categories` returns them in
that form.
"""
import copy
from typing import Dict, List, Tuple

__all__ = [
    'COCO_PANOPTIC_CATEGORIES', 'coco_thing_categories', 'coco_stuff_categories',
    'coco_instance_categories', 'coco_category_by_name'
]

#: The COCO panoptic categories, exactly as in ``panoptic_coco_categories.json``.
COCO_PANOPTIC_CATEGORIES: Tuple[dict, ...] = (
    {'id': 1, 'name': 'person', 'supercategory': 'person',
     'isthing': 1, 'color': [220, 20, 60]},
    {'id': 2, 'name': 'bicycle', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [119, 11, 32]},
    {'id': 3, 'name': 'car', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 0, 142]},
    {'id': 4, 'name': 'motorcycle', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 0, 230]},
    {'id': 5, 'name': 'airplane', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [106, 0, 228]},
    {'id': 6, 'name': 'bus', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 60, 100]},
    {'id': 7, 'name': 'train', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 80, 100]},
    {'id': 8, 'name': 'truck', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 0, 70]},
    {'id': 9, 'name': 'boat', 'supercategory': 'vehicle',
     'isthing': 1, 'color': [0, 0, 192]},
    {'id': 10, 'name': 'traffic light', 'supercategory': 'outdoor',
     'isthing': 1, 'color': [250, 170, 30]},
    {'id': 11, 'name': 'fire hydrant', 'supercategory': 'outdoor',
     'isthing': 1, 'color': [100, 170, 30]},
    {'id': 13, 'name': 'stop sign', 'supercategory': 'outdoor',
     'isthing': 1, 'color': [220, 220, 0]},
    {'id': 14, 'name': 'parking meter', 'supercategory': 'outdoor',
     'isthing': 1, 'color': [175, 116, 175]},
    {'id': 15, 'name': 'bench', 'supercategory': 'outdoor',
     'isthing': 1, 'color': [250, 0, 30]},
    {'id': 16, 'name': 'bird', 'supercategory': 'animal',
     'isthing': 1, 'color': [165, 42, 42]},
    {'id': 17, 'name': 'cat', 'supercategory': 'animal',
     'isthing': 1, 'color': [255, 77, 255]},
    {'id': 18, 'name': 'dog', 'supercategory': 'animal',
     'isthing': 1, 'color': [0, 226, 252]},
    {'id': 19, 'name': 'horse', 'supercategory': 'animal',
     'isthing': 1, 'color': [182, 182, 255]},
    {'id': 20, 'name': 'sheep', 'supercategory': 'animal',
     'isthing': 1, 'color': [0, 82, 0]},
    {'id': 21, 'name': 'cow', 'supercategory': 'animal',
     'isthing': 1, 'color': [120, 166, 157]},
    {'id': 22, 'name': 'elephant', 'supercategory': 'animal',
     'isthing': 1, 'color': [110, 76, 0]},
    {'id': 23, 'name': 'bear', 'supercategory': 'animal',
     'isthing': 1, 'color': [174, 57, 255]},
    {'id': 24, 'name': 'zebra', 'supercategory': 'animal',
     'isthing': 1, 'color': [199, 100, 0]},
    {'id': 25, 'name': 'giraffe', 'supercategory': 'animal',
     'isthing': 1, 'color': [72, 0, 118]},
    {'id': 27, 'name': 'backpack', 'supercategory': 'accessory',
     'isthing': 1, 'color': [255, 179, 240]},
    {'id': 28, 'name': 'umbrella', 'supercategory': 'accessory',
     'isthing': 1, 'color': [0, 125, 92]},
    {'id': 31, 'name': 'handbag', 'supercategory': 'accessory',
     'isthing': 1, 'color': [209, 0, 151]},
    {'id': 32, 'name': 'tie', 'supercategory': 'accessory',
     'isthing': 1, 'color': [188, 208, 182]},
    {'id': 33, 'name': 'suitcase', 'supercategory': 'accessory',
     'isthing': 1, 'color': [0, 220, 176]},
    {'id': 34, 'name': 'frisbee', 'supercategory': 'sports',
     'isthing': 1, 'color': [255, 99, 164]},
    {'id': 35, 'name': 'skis', 'supercategory': 'sports',
     'isthing': 1, 'color': [92, 0, 73]},
    {'id': 36, 'name': 'snowboard', 'supercategory': 'sports',
     'isthing': 1, 'color': [133, 129, 255]},
    {'id': 37, 'name': 'sports ball', 'supercategory': 'sports',
     'isthing': 1, 'color': [78, 180, 255]},
    {'id': 38, 'name': 'kite', 'supercategory': 'sports',
     'isthing': 1, 'color': [0, 228, 0]},
    {'id': 39, 'name': 'baseball bat', 'supercategory': 'sports',
     'isthing': 1, 'color': [174, 255, 243]},
    {'id': 40, 'name': 'baseball glove', 'supercategory': 'sports',
     'isthing': 1, 'color': [45, 89, 255]},
    {'id': 41, 'name': 'skateboard', 'supercategory': 'sports',
     'isthing': 1, 'color': [134, 134, 103]},
    {'id': 42, 'name': 'surfboard', 'supercategory': 'sports',
     'isthing': 1, 'color': [145, 148, 174]},
    {'id': 43, 'name': 'tennis racket', 'supercategory': 'sports',
     'isthing': 1, 'color': [255, 208, 186]},
    {'id': 44, 'name': 'bottle', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [197, 226, 255]},
    {'id': 46, 'name': 'wine glass', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [171, 134, 1]},
    {'id': 47, 'name': 'cup', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [109, 63, 54]},
    {'id': 48, 'name': 'fork', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [207, 138, 255]},
    {'id': 49, 'name': 'knife', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [151, 0, 95]},
    {'id': 50, 'name': 'spoon', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [9, 80, 61]},
    {'id': 51, 'name': 'bowl', 'supercategory': 'kitchen',
     'isthing': 1, 'color': [84, 105, 51]},
    {'id': 52, 'name': 'banana', 'supercategory': 'food',
     'isthing': 1, 'color': [74, 65, 105]},
    {'id': 53, 'name': 'apple', 'supercategory': 'food',
     'isthing': 1, 'color': [166, 196, 102]},
    {'id': 54, 'name': 'sandwich', 'supercategory': 'food',
     'isthing': 1, 'color': [208, 195, 210]},
    {'id': 55, 'name': 'orange', 'supercategory': 'food',
     'isthing': 1, 'color': [255, 109, 65]},
    {'id': 56, 'name': 'broccoli', 'supercategory': 'food',
     'isthing': 1, 'color': [0, 143, 149]},
    {'id': 57, 'name': 'carrot', 'supercategory': 'food',
     'isthing': 1, 'color': [179, 0, 194]},
    {'id': 58, 'name': 'hot dog', 'supercategory': 'food',
     'isthing': 1, 'color': [209, 99, 106]},
    {'id': 59, 'name': 'pizza', 'supercategory': 'food',
     'isthing': 1, 'color': [5, 121, 0]},
    {'id': 60, 'name': 'donut', 'supercategory': 'food',
     'isthing': 1, 'color': [227, 255, 205]},
    {'id': 61, 'name': 'cake', 'supercategory': 'food',
     'isthing': 1, 'color': [147, 186, 208]},
    {'id': 62, 'name': 'chair', 'supercategory': 'furniture',
     'isthing': 1, 'color': [153, 69, 1]},
    {'id': 63, 'name': 'couch', 'supercategory': 'furniture',
     'isthing': 1, 'color': [3, 95, 161]},
    {'id': 64, 'name': 'potted plant', 'supercategory': 'furniture',
     'isthing': 1, 'color': [163, 255, 0]},
    {'id': 65, 'name': 'bed', 'supercategory': 'furniture',
     'isthing': 1, 'color': [119, 0, 170]},
    {'id': 67, 'name': 'dining table', 'supercategory': 'furniture',
     'isthing': 1, 'color': [0, 182, 199]},
    {'id': 70, 'name': 'toilet', 'supercategory': 'furniture',
     'isthing': 1, 'color': [0, 165, 120]},
    {'id': 72, 'name': 'tv', 'supercategory': 'electronic',
     'isthing': 1, 'color': [183, 130, 88]},
    {'id': 73, 'name': 'laptop', 'supercategory': 'electronic',
     'isthing': 1, 'color': [95, 32, 0]},
    {'id': 74, 'name': 'mouse', 'supercategory': 'electronic',
     'isthing': 1, 'color': [130, 114, 135]},
    {'id': 75, 'name': 'remote', 'supercategory': 'electronic',
     'isthing': 1, 'color': [110, 129, 133]},
    {'id': 76, 'name': 'keyboard', 'supercategory': 'electronic',
     'isthing': 1, 'color': [166, 74, 118]},
    {'id': 77, 'name': 'cell phone', 'supercategory': 'electronic',
     'isthing': 1, 'color': [219, 142, 185]},
    {'id': 78, 'name': 'microwave', 'supercategory': 'appliance',
     'isthing': 1, 'color': [79, 210, 114]},
    {'id': 79, 'name': 'oven', 'supercategory': 'appliance',
     'isthing': 1, 'color': [178, 90, 62]},
    {'id': 80, 'name': 'toaster', 'supercategory': 'appliance',
     'isthing': 1, 'color': [65, 70, 15]},
    {'id': 81, 'name': 'sink', 'supercategory': 'appliance',
     'isthing': 1, 'color': [127, 167, 115]},
    {'id': 82, 'name': 'refrigerator', 'supercategory': 'appliance',
     'isthing': 1, 'color': [59, 105, 106]},
    {'id': 84, 'name': 'book', 'supercategory': 'indoor',
     'isthing': 1, 'color': [142, 108, 45]},
    {'id': 85, 'name': 'clock', 'supercategory': 'indoor',
     'isthing': 1, 'color': [196, 172, 0]},
    {'id': 86, 'name': 'vase', 'supercategory': 'indoor',
     'isthing': 1, 'color': [95, 54, 80]},
    {'id': 87, 'name': 'scissors', 'supercategory': 'indoor',
     'isthing': 1, 'color': [128, 76, 255]},
    {'id': 88, 'name': 'teddy bear', 'supercategory': 'indoor',
     'isthing': 1, 'color': [201, 57, 1]},
    {'id': 89, 'name': 'hair drier', 'supercategory': 'indoor',
     'isthing': 1, 'color': [246, 0, 122]},
    {'id': 90, 'name': 'toothbrush', 'supercategory': 'indoor',
     'isthing': 1, 'color': [191, 162, 208]},
    {'id': 92, 'name': 'banner', 'supercategory': 'textile',
     'isthing': 0, 'color': [255, 255, 128]},
    {'id': 93, 'name': 'blanket', 'supercategory': 'textile',
     'isthing': 0, 'color': [147, 211, 203]},
    {'id': 95, 'name': 'bridge', 'supercategory': 'building',
     'isthing': 0, 'color': [150, 100, 100]},
    {'id': 100, 'name': 'cardboard', 'supercategory': 'raw-material',
     'isthing': 0, 'color': [168, 171, 172]},
    {'id': 107, 'name': 'counter', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [146, 112, 198]},
    {'id': 109, 'name': 'curtain', 'supercategory': 'textile',
     'isthing': 0, 'color': [210, 170, 100]},
    {'id': 112, 'name': 'door-stuff', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [92, 136, 89]},
    {'id': 118, 'name': 'floor-wood', 'supercategory': 'floor',
     'isthing': 0, 'color': [218, 88, 184]},
    {'id': 119, 'name': 'flower', 'supercategory': 'plant',
     'isthing': 0, 'color': [241, 129, 0]},
    {'id': 122, 'name': 'fruit', 'supercategory': 'food-stuff',
     'isthing': 0, 'color': [217, 17, 255]},
    {'id': 125, 'name': 'gravel', 'supercategory': 'ground',
     'isthing': 0, 'color': [124, 74, 181]},
    {'id': 128, 'name': 'house', 'supercategory': 'building',
     'isthing': 0, 'color': [70, 70, 70]},
    {'id': 130, 'name': 'light', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [255, 228, 255]},
    {'id': 133, 'name': 'mirror-stuff', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [154, 208, 0]},
    {'id': 138, 'name': 'net', 'supercategory': 'structural',
     'isthing': 0, 'color': [193, 0, 92]},
    {'id': 141, 'name': 'pillow', 'supercategory': 'textile',
     'isthing': 0, 'color': [76, 91, 113]},
    {'id': 144, 'name': 'platform', 'supercategory': 'ground',
     'isthing': 0, 'color': [255, 180, 195]},
    {'id': 145, 'name': 'playingfield', 'supercategory': 'ground',
     'isthing': 0, 'color': [106, 154, 176]},
    {'id': 147, 'name': 'railroad', 'supercategory': 'ground',
     'isthing': 0, 'color': [230, 150, 140]},
    {'id': 148, 'name': 'river', 'supercategory': 'water',
     'isthing': 0, 'color': [60, 143, 255]},
    {'id': 149, 'name': 'road', 'supercategory': 'ground',
     'isthing': 0, 'color': [128, 64, 128]},
    {'id': 151, 'name': 'roof', 'supercategory': 'building',
     'isthing': 0, 'color': [92, 82, 55]},
    {'id': 154, 'name': 'sand', 'supercategory': 'ground',
     'isthing': 0, 'color': [254, 212, 124]},
    {'id': 155, 'name': 'sea', 'supercategory': 'water',
     'isthing': 0, 'color': [73, 77, 174]},
    {'id': 156, 'name': 'shelf', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [255, 160, 98]},
    {'id': 159, 'name': 'snow', 'supercategory': 'ground',
     'isthing': 0, 'color': [255, 255, 255]},
    {'id': 161, 'name': 'stairs', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [104, 84, 109]},
    {'id': 166, 'name': 'tent', 'supercategory': 'building',
     'isthing': 0, 'color': [169, 164, 131]},
    {'id': 168, 'name': 'towel', 'supercategory': 'textile',
     'isthing': 0, 'color': [225, 199, 255]},
    {'id': 171, 'name': 'wall-brick', 'supercategory': 'wall',
     'isthing': 0, 'color': [137, 54, 74]},
    {'id': 175, 'name': 'wall-stone', 'supercategory': 'wall',
     'isthing': 0, 'color': [135, 158, 223]},
    {'id': 176, 'name': 'wall-tile', 'supercategory': 'wall',
     'isthing': 0, 'color': [7, 246, 231]},
    {'id': 177, 'name': 'wall-wood', 'supercategory': 'wall',
     'isthing': 0, 'color': [107, 255, 200]},
    {'id': 178, 'name': 'water-other', 'supercategory': 'water',
     'isthing': 0, 'color': [58, 41, 149]},
    {'id': 180, 'name': 'window-blind', 'supercategory': 'window',
     'isthing': 0, 'color': [183, 121, 142]},
    {'id': 181, 'name': 'window-other', 'supercategory': 'window',
     'isthing': 0, 'color': [255, 73, 97]},
    {'id': 184, 'name': 'tree-merged', 'supercategory': 'plant',
     'isthing': 0, 'color': [107, 142, 35]},
    {'id': 185, 'name': 'fence-merged', 'supercategory': 'structural',
     'isthing': 0, 'color': [190, 153, 153]},
    {'id': 186, 'name': 'ceiling-merged', 'supercategory': 'ceiling',
     'isthing': 0, 'color': [146, 139, 141]},
    {'id': 187, 'name': 'sky-other-merged', 'supercategory': 'sky',
     'isthing': 0, 'color': [70, 130, 180]},
    {'id': 188, 'name': 'cabinet-merged', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [134, 199, 156]},
    {'id': 189, 'name': 'table-merged', 'supercategory': 'furniture-stuff',
     'isthing': 0, 'color': [209, 226, 140]},
    {'id': 190, 'name': 'floor-other-merged', 'supercategory': 'floor',
     'isthing': 0, 'color': [96, 36, 108]},
    {'id': 191, 'name': 'pavement-merged', 'supercategory': 'ground',
     'isthing': 0, 'color': [96, 96, 96]},
    {'id': 192, 'name': 'mountain-merged', 'supercategory': 'solid',
     'isthing': 0, 'color': [64, 170, 64]},
    {'id': 193, 'name': 'grass-merged', 'supercategory': 'plant',
     'isthing': 0, 'color': [152, 251, 152]},
    {'id': 194, 'name': 'dirt-merged', 'supercategory': 'ground',
     'isthing': 0, 'color': [208, 229, 228]},
    {'id': 195, 'name': 'paper-merged', 'supercategory': 'raw-material',
     'isthing': 0, 'color': [206, 186, 171]},
    {'id': 196, 'name': 'food-other-merged', 'supercategory': 'food-stuff',
     'isthing': 0, 'color': [152, 161, 64]},
    {'id': 197, 'name': 'building-other-merged', 'supercategory': 'building',
     'isthing': 0, 'color': [116, 112, 0]},
    {'id': 198, 'name': 'rock-merged', 'supercategory': 'solid',
     'isthing': 0, 'color': [0, 114, 143]},
    {'id': 199, 'name': 'wall-other-merged', 'supercategory': 'wall',
     'isthing': 0, 'color': [102, 102, 156]},
    {'id': 200, 'name': 'rug-merged', 'supercategory': 'textile',
     'isthing': 0, 'color': [250, 141, 255]},
)


def coco_thing_categories() -> List[dict]:
    """The 80 thing categories (``isthing == 1``), as independent copies.

    Returns:
        Category dicts ``{id, name, supercategory, isthing, color}``, ids increasing.
    """
    return [copy.deepcopy(cat) for cat in COCO_PANOPTIC_CATEGORIES if cat['isthing']]


def coco_stuff_categories() -> List[dict]:
    """The 53 stuff categories (``isthing == 0``), as independent copies.

    Returns:
        Category dicts ``{id, name, supercategory, isthing, color}``, ids increasing.
    """
    return [copy.deepcopy(cat) for cat in COCO_PANOPTIC_CATEGORIES if not cat['isthing']]


def coco_instance_categories() -> List[dict]:
    """The ``categories`` of a COCO instance annotation file (the 80 things).

    Returns:
        Dicts ``{supercategory, id, name}``, ids increasing, as in
        ``instances_{train,val}2017.json``.
    """
    return [dict(supercategory=cat['supercategory'], id=cat['id'], name=cat['name'])
            for cat in COCO_PANOPTIC_CATEGORIES if cat['isthing']]


_BY_NAME: Dict[str, dict] = {cat['name']: cat for cat in COCO_PANOPTIC_CATEGORIES}


def coco_category_by_name(name: str) -> dict:
    """Look up one COCO panoptic category by its name.

    Args:
        name: Category name, e.g. ``'sports ball'`` or ``'wall-other-merged'``.

    Returns:
        A copy of the category dict.

    Raises:
        KeyError: If ``name`` is not a COCO panoptic category.
    """
    if name not in _BY_NAME:
        raise KeyError(f'{name!r} is not a COCO panoptic category')
    return copy.deepcopy(_BY_NAME[name])
