"""ADE20K-Full semantic segmentation (847 classes), official MaskFormer layout.

The official preparation script (``prepare_ade20k_full_sem_seg.py``) reads the
ADE20K release ``ADE20K_2021_17_01`` and writes::

    ADE20K_2021_17_01/
      images_detectron2/{training,validation}/*.jpg       short side <= 512
      annotations_detectron2/{training,validation}/*.tif  same names, .tif

Each annotation is a single-channel **uint16** TIFF of contiguous labels
``0..846`` (the classes below, in that order) with ``65535`` on unlabelled
pixels and on objects outside the 847 classes.

mmseg's ``LoadAnnotations`` casts every label map to ``uint8``, which would
fold labels 256..846 onto 0..255 (and 65535 onto 255), so these maps are read
with :class:`Load16BitAnnotations`, which keeps the stored integer type. The
models, ``GenerateMaskTargets``, the data preprocessor (``seg_pad_val``) and
``IoUMetric`` are then told ``ignore_index=65535``.
"""
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations

from mmseg_maskformer.registry import DATASETS, TRANSFORMS

#: Label of unlabelled pixels in the official 16-bit annotations.
ADE20K_FULL_IGNORE_INDEX = 65535

#: The 847 class names, indexed by contiguous label (official ``trainId``).
ADE20K_FULL_CLASSES = (
    'wall', 'building, edifice', 'sky', 'tree', 'road, route', 'floor, flooring', 'ceiling', 'bed',
    'sidewalk, pavement', 'earth, ground', 'cabinet',
    'person, individual, someone, somebody, mortal, soul', 'grass', 'windowpane, window',
    'car, auto, automobile, machine, motorcar', 'mountain, mount', 'plant, flora, plant life',
    'table', 'chair', 'curtain, drape, drapery, mantle, pall', 'door', 'sofa, couch, lounge',
    'sea', 'painting, picture', 'water', 'mirror', 'house', 'rug, carpet, carpeting', 'shelf',
    'armchair', 'fence, fencing', 'field', 'lamp', 'rock, stone', 'seat', 'river', 'desk',
    'bathtub, bathing tub, bath, tub', 'railing, rail', 'signboard, sign', 'cushion', 'path',
    'work surface', 'stairs, steps', 'column, pillar', 'sink', 'wardrobe, closet, press', 'snow',
    'refrigerator, icebox', 'base, pedestal, stand', 'bridge, span', 'blind, screen', 'runway',
    'cliff, drop, drop-off', 'sand', 'fireplace, hearth, open fireplace', 'pillow',
    'screen door, screen', 'toilet, can, commode, crapper, pot, potty, stool, throne',
    'skyscraper', 'grandstand, covered stand', 'box', 'pool table, billiard table, snooker table',
    'palm, palm tree', 'double door', 'coffee table, cocktail table', 'counter', 'countertop',
    'chest of drawers, chest, bureau, dresser', 'kitchen island', 'boat', 'waterfall, falls',
    'stove, kitchen stove, range, kitchen range, cooking stove', 'flower', 'bookcase', 'controls',
    'book', 'stairway, staircase', 'streetlight, street lamp',
    'computer, computing machine, computing device, data processor, electronic computer, '
    'information processing system',
    'bus, autobus, coach, charabanc, double-decker, jitney, motorbus, motorcoach, omnibus, '
    'passenger vehicle',
    'swivel chair', 'light, light source', 'bench', 'case, display case, showcase, vitrine',
    'towel', 'fountain', 'embankment',
    'television receiver, television, television set, tv, tv set, idiot box, boob tube, telly, '
    'goggle box',
    'van', 'hill', 'awning, sunshade, sunblind', 'poster, posting, placard, notice, bill, card',
    'truck, motortruck', 'airplane, aeroplane, plane', 'pole', 'tower', 'court', 'ball',
    'aircraft carrier, carrier, flattop, attack aircraft carrier', 'buffet, counter, sideboard',
    'hovel, hut, hutch, shack, shanty', 'apparel, wearing apparel, dress, clothes',
    'minibike, motorbike', 'animal, animate being, beast, brute, creature, fauna',
    'chandelier, pendant, pendent', 'step, stair', 'booth, cubicle, stall, kiosk',
    'bicycle, bike, wheel, cycle', 'doorframe, doorcase', 'sconce', 'pond',
    'trade name, brand name, brand, marque',
    'bannister, banister, balustrade, balusters, handrail', 'bag',
    'traffic light, traffic signal, stoplight', 'gazebo',
    'escalator, moving staircase, moving stairway', 'land, ground, soil', 'board, plank',
    'arcade machine', 'eiderdown, duvet, continental quilt', 'bar', 'stall, stand, sales booth',
    'playground', 'ship', 'ottoman, pouf, pouffe, puff, hassock',
    'ashcan, trash can, garbage can, wastebin, ash bin, ash-bin, ashbin, dustbin, trash barrel, '
    'trash bin',
    'bottle', 'cradle', 'pot, flowerpot',
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter', 'train, railroad train',
    'stool', 'lake', 'tank, storage tank', 'ice, water ice', 'basket, handbasket', 'manhole',
    'tent, collapsible shelter', 'canopy', 'microwave, microwave oven', 'barrel, cask',
    'dirt track', 'beam', 'dishwasher, dish washer, dishwashing machine', 'plate',
    'screen, crt screen', 'ruins', 'washer, automatic washer, washing machine', 'blanket, cover',
    'plaything, toy', 'food, solid food', 'screen, silver screen, projection screen', 'oven',
    'stage', 'beacon, lighthouse, beacon light, pharos', 'umbrella', 'sculpture', 'aqueduct',
    'container', 'scaffolding, staging', 'hood, exhaust hood', 'curb, curbing, kerb',
    'roller coaster', 'horse, equus caballus', 'catwalk', 'glass, drinking glass', 'vase',
    'central reservation', 'carousel', 'radiator', 'closet', 'machine',
    'pier, wharf, wharfage, dock', 'fan', 'inflatable bounce game', 'pitch', 'paper',
    'arcade, colonnade', 'hot tub', 'helicopter', 'tray', 'partition, divider', 'vineyard', 'bowl',
    'bullring', 'flag', 'pot', 'footbridge, overcrossing, pedestrian bridge', 'shower',
    'bag, traveling bag, travelling bag, grip, suitcase', 'bulletin board, notice board',
    'confessional booth', 'trunk, tree trunk, bole', 'forest', 'elevator door',
    'laptop, laptop computer', 'instrument panel', 'bucket, pail', 'tapestry, tapis', 'platform',
    'jacket', 'gate', 'monitor, monitoring device',
    'telephone booth, phone booth, call box, telephone box, telephone kiosk', 'spotlight, spot',
    'ring', 'control panel', 'blackboard, chalkboard', 'air conditioner, air conditioning',
    'chest', 'clock', 'sand dune', 'pipe, pipage, piping', 'vault', 'table football', 'cannon',
    'swimming pool, swimming bath, natatorium', 'fluorescent, fluorescent fixture', 'statue',
    'loudspeaker, speaker, speaker unit, loudspeaker system, speaker system', 'exhibitor',
    'ladder', 'carport', 'dam', 'pulpit', 'skylight, fanlight', 'water tower',
    'grill, grille, grillwork', 'display board', 'pane, pane of glass, window glass',
    'rubbish, trash, scrap', 'ice rink', 'fruit', 'patio', 'vending machine',
    'telephone, phone, telephone set', 'net',
    'backpack, back pack, knapsack, packsack, rucksack, haversack', 'jar', 'track', 'magazine',
    'shutter', 'roof', 'banner, streamer', 'landfill', 'post', 'altarpiece, reredos',
    'hat, chapeau, lid', 'arch, archway', 'table game', 'bag, handbag, pocketbook, purse',
    'document, written document, papers', 'dome', 'pier', 'shanties', 'forecourt', 'crane',
    'dog, domestic dog, canis familiaris', 'piano, pianoforte, forte-piano', 'drawing', 'cabin',
    'ad, advertisement, advertizement, advertising, advertizing, advert',
    'amphitheater, amphitheatre, coliseum', 'monument', 'henhouse', 'cockpit', 'heater, warmer',
    'windmill, aerogenerator, wind generator', 'pool', 'elevator, lift',
    'decoration, ornament, ornamentation', 'labyrinth', 'text, textual matter', 'printer',
    'mezzanine, first balcony', 'mattress', 'straw', 'stalls', 'patio, terrace',
    'billboard, hoarding', 'bus stop', 'trouser, pant', 'console table, console', 'rack',
    'notebook', 'shrine', 'pantry', 'cart', 'steam shovel', 'porch',
    'postbox, mailbox, letter box', 'figurine, statuette', 'recycling bin', 'folding screen',
    'telescope', 'deck chair, beach chair', 'kennel', 'coffee maker',
    "altar, communion table, lord's table", 'fish', 'easel', 'artificial golf green', 'iceberg',
    'candlestick, candle holder', 'shower stall, shower bath', 'television stand',
    'wall socket, wall plug, electric outlet, electrical outlet, outlet, electric receptacle',
    'skeleton', 'grand piano, grand', 'candy, confect', 'grille door',
    'pedestal, plinth, footstall', 'jersey, t-shirt, tee shirt', 'shoe',
    'gravestone, headstone, tombstone', 'shanty', 'structure', 'rocking chair, rocker', 'bird',
    'place mat', 'tomb', 'big top', 'gas pump, gasoline pump, petrol pump, island dispenser',
    'lockers', 'cage', 'finger', 'bleachers', 'ferris wheel', 'hairdresser chair', 'mat', 'stands',
    'aquarium, fish tank, marine museum', 'streetcar, tram, tramcar, trolley, trolley car',
    'napkin, table napkin, serviette', 'dummy', 'booklet, brochure, folder, leaflet, pamphlet',
    'sand trap', 'shop, store', 'table cloth', 'service station', 'coffin', 'drawer', 'cages',
    'slot machine, coin machine', 'balcony', 'volleyball court', 'table tennis', 'control table',
    'shirt', 'merchandise, ware, product', 'railway', 'parterre', 'chimney', 'can, tin, tin can',
    'tanks', 'fabric, cloth, material, textile', 'alga, algae', 'system', 'map', 'greenhouse',
    'mug', 'barbecue', 'trailer', 'toilet tissue, toilet paper, bathroom tissue', 'organ',
    'dishrag, dishcloth', 'island', 'keyboard', 'trench', 'basket, basketball hoop, hoop',
    'steering wheel, wheel', 'pitcher, ewer', 'goal', 'bread, breadstuff, staff of life', 'beds',
    'wood', 'file cabinet', 'newspaper, paper', 'motorboat', 'rope', 'guitar', 'rubble', 'scarf',
    'barrels', 'cap', 'leaves', 'control tower', 'dashboard', 'bandstand', 'lectern',
    'switch, electric switch, electrical switch', 'baseboard, mopboard, skirting board',
    'shower room', 'smoke', 'faucet, spigot', 'bulldozer', 'saucepan', 'shops', 'meter',
    'crevasse', 'gear', 'candelabrum, candelabra', 'sofa bed', 'tunnel', 'pallet',
    'wire, conducting wire', 'kettle, boiler', 'bidet',
    'baby buggy, baby carriage, carriage, perambulator, pram, stroller, go-cart, pushchair, '
    'pusher',
    'music stand', 'pipe, tube', 'cup', 'parking meter', 'ice hockey rink', 'shelter', 'weeds',
    'temple', 'patty, cake', 'ski slope', 'panel', 'wallet', 'wheel', 'towel rack, towel horse',
    'roundabout', 'canister, cannister, tin', 'rod', 'soap dispenser', 'bell', 'canvas',
    'box office, ticket office, ticket booth', 'teacup', 'trellis', 'workbench', 'valley, vale',
    'toaster', 'knife', 'podium', 'ramp', 'tumble dryer', 'fireplug, fire hydrant, plug',
    'gym shoe, sneaker, tennis shoe', 'lab bench', 'equipment', 'rocky formation', 'plastic',
    'calendar', 'caravan', 'check-in-desk', 'ticket counter', 'brush', 'mill', 'covered bridge',
    'bowling alley', 'hanger', 'excavator', 'trestle', 'revolving door', 'blast furnace',
    'scale, weighing machine', 'projector', 'soap', 'locker', 'tractor', 'stretcher', 'frame',
    'grating', 'alembic', 'candle, taper, wax light', 'barrier', 'cardboard', 'cave', 'puddle',
    'tarp', 'price tag', 'watchtower', 'meters',
    'light bulb, lightbulb, bulb, incandescent lamp, electric light, electric-light bulb',
    'tracks', 'hair dryer', 'skirt', 'viaduct', 'paper towel', 'coat', 'sheet',
    'fire extinguisher, extinguisher, asphyxiator', 'water wheel', 'pottery, clayware',
    'magazine rack', 'teapot', 'microphone, mike', 'support', 'forklift', 'canyon',
    'cash register, register', 'leaf, leafage, foliage', 'remote control, remote', 'soap dish',
    'windshield, windscreen', 'cat', 'cue, cue stick, pool cue, pool stick',
    'vent, venthole, vent-hole, blowhole', 'videos', 'shovel', 'eaves',
    'antenna, aerial, transmitting aerial', 'shipyard', 'hen, biddy', 'traffic cone',
    'washing machines', 'truck crane', 'cds', 'niche', 'scoreboard', 'briefcase', 'boot',
    'sweater, jumper', 'hay', 'pack', 'bottle rack', 'glacier', 'pergola', 'building materials',
    'television camera', 'first floor', 'rifle', 'tennis table', 'stadium', 'safety belt', 'cover',
    'dish rack', 'synthesizer', 'pumpkin', 'gutter', 'fruit stand', 'ice floe, floe',
    'handle, grip, handgrip, hold', 'wheelchair', 'mousepad, mouse mat', 'diploma',
    'fairground ride', 'radio', 'hotplate', 'junk', 'wheelbarrow', 'stream', 'toll plaza',
    'punching bag', 'trough', 'throne', 'chair desk', 'weighbridge', 'extractor fan',
    'hanging clothes', 'dish, dish aerial, dish antenna, saucer', 'alarm clock, alarm', 'ski lift',
    'chain', 'garage', 'mechanical shovel', 'wine rack', 'tramway', 'treadmill', 'menu', 'block',
    'well', 'witness stand', 'branch', 'duck', 'casserole', 'frying pan', 'desk organizer', 'mast',
    'spectacles, specs, eyeglasses, glasses', 'service elevator', 'dollhouse', 'hammock',
    'clothes hanging', 'photocopier', 'notepad', 'golf cart', 'footpath', 'cross',
    'baptismal font', 'boiler', 'skip', 'rotisserie', 'tables', 'water mill', 'helmet',
    'cover curtain', 'brick', 'table runner', 'ashtray', 'street box', 'stick', 'hangers', 'cells',
    'urinal', 'centerpiece', 'portable fridge', 'dvds', 'golf club', 'skirting board',
    'water cooler', 'clipboard', 'camera, photographic camera', 'pigeonhole', 'chips',
    'food processor', 'post box', 'lid', 'drum', 'blender', 'cave entrance', 'dental chair',
    'obelisk', 'canoe', 'mobile', 'monitors', 'pool ball', 'cue rack', 'baggage carts', 'shore',
    'fork', 'paper filer', 'bicycle rack', 'coat rack', 'garland', 'sports bag', 'fish tank',
    'towel dispenser', 'carriage', 'brochure', 'plaque', 'stringer', 'iron', 'spoon', 'flag pole',
    'toilet brush', 'book stand', 'water faucet, water tap, tap, hydrant', 'ticket office',
    'broom', 'dvd', 'ice bucket', 'carapace, shell, cuticle, shield', 'tureen', 'folders', 'chess',
    'root', 'sewing machine', 'model', 'pen', 'violin', 'sweatshirt', 'recycling materials',
    'mitten', 'chopping board, cutting board', 'mask', 'log', 'mouse, computer mouse', 'grill',
    'hole', 'target', 'trash bag', 'chalk', 'sticks', 'balloon', 'score', 'hair spray', 'roll',
    'runner', 'engine', 'inflatable glove', 'games', 'pallets', 'baskets', 'coop', 'dvd player',
    'rocking horse', 'buckets', 'bread rolls', 'shawl', 'watering can', 'spotlights', 'post-it',
    'bowls', 'security camera', 'runner cloth', 'lock', 'alarm, warning device, alarm system',
    'side', 'roulette', 'bone', 'cutlery', 'pool balls', 'wheels', 'spice rack', 'plant pots',
    'towel ring', 'bread box', 'video', 'funfair', 'breads', 'tripod', 'ironing board', 'skimmer',
    'hollow', 'scratching post', 'tricycle', 'file box', 'mountain pass', 'tombstones', 'cooker',
    'card game, cards', 'golf bag', 'towel paper', 'chaise lounge', 'sun', 'toilet paper holder',
    'rake', 'key', 'umbrella stand', 'dartboard', 'transformer', 'fireplace utensils',
    'sweatshirts', 'cellular telephone, cellular phone, cellphone, cell, mobile phone', 'tallboy',
    'stapler', 'sauna', 'test tube', 'palette', 'shopping carts', 'tools',
    'push button, push, button', 'star', 'roof rack', 'barbed wire', 'spray', 'ear', 'sponge',
    'racket', 'tins', 'eyeglasses', 'file', 'scarfs', 'sugar bowl', 'flip flop', 'headstones',
    'laptop bag', 'leash', 'climbing frame', 'suit hanger', 'floor spotlight', 'plate rack',
    'sewer', 'hard drive', 'sprinkler', 'tools box', 'necklace', 'bulbs', 'steel industry', 'club',
    'jack', 'door bars', 'control panel, instrument panel, control board, board, panel',
    'hairbrush', 'napkin holder', 'office', 'smoke detector', 'utensils', 'apron', 'scissors',
    'terminal', 'grinder', 'entry phone', 'newspaper stand', 'pepper shaker', 'onions',
    'central processing unit, cpu, c p u , central processor, processor, mainframe', 'tape', 'bat',
    'coaster', 'calculator', 'potatoes', 'luggage rack', 'salt', 'street number', 'viewpoint',
    'sword', 'cd', 'rowing machine', 'plug', 'andiron, firedog, dog, dog-iron', 'pepper', 'tongs',
    'bonfire', 'dog dish', 'belt', 'dumbbells', 'videocassette recorder, vcr', 'hook', 'envelopes',
    'shower faucet', 'watch', 'padlock', 'swimming pool ladder', 'spanners', 'gravy boat',
    'notice board', 'trash bags', 'fire alarm', 'ladle', 'stethoscope', 'rocket', 'funnel',
    'bowling pins', 'valve', 'thermometer', 'cups', 'spice jar', 'night light', 'soaps',
    'games table', 'slotted spoon', 'reel', 'scourer', 'sleeping robe', 'desk mat', 'dumbbell',
    'hammer', 'tie', 'typewriter', 'shaker', 'cheese dish', 'sea star', 'racquet',
    'butane gas cylinder', 'paper weight', 'shaving brush', 'sunglasses', 'gear shift',
    'towel rail', 'adding machine, totalizer, totaliser',
)


@DATASETS.register_module()
class ADE20KFullDataset(BaseSegDataset):
    """ADE20K-Full (847 classes) as written by the official preparation script.

    Images ``<name>.jpg`` pair with annotations ``<name>.tif`` of the same
    stem; typical ``data_prefix``: ``img_path='images_detectron2/training'``,
    ``seg_map_path='annotations_detectron2/training'``. Load the annotations
    with :class:`Load16BitAnnotations`.

    Args:
        img_suffix: Image file suffix.
        seg_map_suffix: Annotation file suffix.
        reduce_zero_label: Must stay False: label 0 is a class ('wall').
        ignore_index: Label of unlabelled pixels (65535).
        **kwargs: Arguments of mmseg's ``BaseSegDataset`` (``data_root``,
            ``data_prefix``, ``pipeline``, ``metainfo``, ...).
    """

    METAINFO = dict(classes=ADE20K_FULL_CLASSES)

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.tif',
                 reduce_zero_label: bool = False,
                 ignore_index: int = ADE20K_FULL_IGNORE_INDEX,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError('ADE20KFullDataset: the official labels are already contiguous '
                             "from 0 ('wall'); reduce_zero_label must be False")
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=False, ignore_index=ignore_index, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Optional[Dict[int, int]]:
        """Map labels to a subset of the classes; dropped classes become 65535.

        mmseg's version sends dropped classes to 255, a real class here.

        Args:
            new_classes: Class names from the ``metainfo`` argument, or None.

        Returns:
            ``{old_label: new_label}``, or None when the classes are unchanged.

        Raises:
            ValueError: If a name in ``new_classes`` is not an ADE20K-Full class.
        """
        old_classes = list(cls.METAINFO['classes'])
        if new_classes is None or list(new_classes) == old_classes:
            return None
        unknown = sorted(set(new_classes) - set(old_classes))
        if unknown:
            raise ValueError(f'classes {unknown[:5]} are not ADE20K-Full classes')
        new_classes = list(new_classes)
        return {label: new_classes.index(name) if name in new_classes
                else ADE20K_FULL_IGNORE_INDEX
                for label, name in enumerate(old_classes)}


@TRANSFORMS.register_module()
class Load16BitAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` keeping the stored integer type of the map.

    A 16-bit label map (e.g. ADE20K-Full's uint16 TIFFs) stays uint16, so
    labels above 255 and the ignore value 65535 survive; 8-bit PNGs stay
    uint8. A ``label_map`` from the dataset is applied; ``reduce_zero_label``
    is not supported (no 16-bit dataset here needs it).

    Required keys: ``seg_map_path``, ``reduce_zero_label``, ``seg_fields``.
    Added keys: ``gt_seg_map`` (np.ndarray (H, W), the file's integer type).

    Args:
        **kwargs: Arguments of mmseg's ``LoadAnnotations`` (``imdecode_backend``,
            ``backend_args``); ``reduce_zero_label`` must stay falsy.
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('reduce_zero_label'):
            raise ValueError('Load16BitAnnotations does not support reduce_zero_label')
        super().__init__(**kwargs)

    def _load_seg_map(self, results: dict) -> None:
        """Read ``seg_map_path`` into ``results['gt_seg_map']`` without a cast."""
        if results.get('reduce_zero_label'):
            raise ValueError(f'{results["seg_map_path"]}: Load16BitAnnotations does not support '
                             'reduce_zero_label; set it False in the dataset')
        data = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        seg_map = mmcv.imfrombytes(data, flag='unchanged', backend=self.imdecode_backend)
        seg_map = np.asarray(seg_map).squeeze()
        if seg_map.ndim != 2 or not np.issubdtype(seg_map.dtype, np.integer):
            raise ValueError(f'{results["seg_map_path"]}: expected a single-channel integer '
                             f'label map, got {seg_map.dtype} of shape {seg_map.shape}')
        label_map = results.get('label_map')
        if label_map:
            source = seg_map.copy()
            dtype = np.promote_types(seg_map.dtype, np.min_scalar_type(max(label_map.values())))
            seg_map = seg_map.astype(dtype)
            for old_label, new_label in label_map.items():
                seg_map[source == old_label] = new_label
        results['gt_seg_map'] = seg_map
        results['seg_fields'].append('gt_seg_map')
