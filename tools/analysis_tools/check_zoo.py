"""Check that every model row of the reference model zoos has a config here.

Usage:
    python tools/analysis_tools/check_zoo.py [--seeds DIR | --rows JSON]
        [--allow-missing REGEX ...] [--write-rows JSON]

The reference zoos are the model tables of MaskFormer, Mask2Former (with its
RankSeg variants), sssegmentation's MaskFormer and mmdetection's Mask2Former.
``--seeds DIR`` parses those tables from their text files (``NNN_*.txt``; a
file that never mentions MaskFormer/Mask2Former is skipped); otherwise the
parsed rows are read from a JSON file, by default the committed copy
``tests/data/zoo_seed_rows.json`` (``--write-rows`` makes it).

Every row has a stable id: ``NNN/<row id>`` for tables that mark their rows
with ``<!-- ROW: id -->`` (``NNN/<table>/<row id>`` when the id repeats in the
file; unmarked variants such as "+ RankSeg" get ``<row id>+rankseg``), and
``NNN/<table>/<backbone>`` for Markdown tables. The ``Seed Rows`` of the models
in ``configs/*/metafile.yaml`` say which rows a config reproduces.

Prints one line per row (id, config(s), status) and a summary. Exits with 1
when a row has no config (unless an ``--allow-missing`` regex matches its id,
table or section title: it is then listed as pending), when a metafile names a
config that does not exist or a seed row that is not in the tables, or when a
config under ``configs/`` (``_base_`` and synthetic demos aside) is in no
metafile; with 2 on a bad command line (e.g. a rows file that does not exist).
"""
import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml
from terminaltables import AsciiTable

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROWS = REPO / 'tests' / 'data' / 'zoo_seed_rows.json'
RELEVANT = re.compile(r'mask2?former', re.IGNORECASE)
ROW_MARKER = re.compile(r'<!--\s*ROW:\s*(\S+)\s*-->')
HEADING = re.compile(r'^(#+)\s+(.*?)\s*$')

Row = Dict[str, object]


def _clean(text: str) -> str:
    """Turns a table cell (HTML or Markdown) into plain text."""
    text = re.sub(r'<br\s*/?>', ' ', text)
    text = re.sub(r'<[^>]+>', '', text)
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    return ' '.join(html.unescape(text).split()).rstrip(' \\')


def _slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')


class _Headings:
    """Tracks the Markdown headings above the current line."""

    def __init__(self) -> None:
        self.levels: Dict[int, str] = {}

    def update(self, line: str) -> None:
        match = HEADING.match(line)
        if match:
            level = len(match.group(1))
            self.levels = {k: v for k, v in self.levels.items() if k < level}
            self.levels[level] = _clean(match.group(2))

    def titles(self) -> Tuple[str, str]:
        """(table title, section title): the two deepest headings."""
        texts = [self.levels[k] for k in sorted(self.levels)]
        return (texts[-1] if texts else '', texts[-2] if len(texts) > 1 else '')


def _html_rows(lines: Sequence[str]) -> List[Row]:
    """Rows of the HTML tables (``<th>`` header, ``<!-- ROW -->`` markers)."""
    rows: List[Row] = []
    headings, header, buffer = _Headings(), [], None
    marker: Optional[str] = None
    base: Optional[str] = None
    for line in lines:
        headings.update(line)
        if '<table' in line:
            header, base = [], None
        header += [_clean(h) for h in re.findall(r'<th[^>]*>(.*?)</th>', line)]
        found = ROW_MARKER.search(line)
        if found:
            marker = found.group(1)
        if '<tr' in line:
            buffer = ''
        if buffer is None:
            continue
        buffer += line
        if '</tr>' not in line:
            continue
        cells = [_clean(c) for c in re.findall(r'<td[^>]*>(.*?)</td>', buffer, re.S)]
        buffer = None
        name = cells[0] if cells else ''
        if marker:
            key, base, marker = marker, marker, None
        elif base and ' + ' in name:
            key = f"{base}+{_slug(name.split(' + ', 1)[1])}"
        else:
            key = _slug(name)
        table, section = headings.titles()
        rows.append(dict(key=key, table=table, section=section, cells=dict(zip(header, cells))))
    return rows


def _markdown_rows(lines: Sequence[str]) -> List[Row]:
    """Rows of the Markdown (``| a | b |``) tables, keyed by their backbone."""
    rows: List[Row] = []
    headings, block = _Headings(), []
    for line in list(lines) + ['']:
        if line.lstrip().startswith('|'):
            block.append([c.strip() for c in line.strip().strip('|').split('|')])
            continue
        if block:
            rows += _markdown_block(block, *headings.titles())
            block = []
        headings.update(line)
    return rows


def _markdown_block(block: List[List[str]], table: str, section: str) -> List[Row]:
    header = [_clean(h) for h in block[0]]
    body = [r for r in block[1:] if not all(re.fullmatch(r':?-+:?', c) for c in r)]
    cells = [dict(zip(header, [_clean(c) for c in r])) for r in body]
    column = 'Backbone' if 'Backbone' in header else header[0]
    names = [c[column].replace(' ', '-') for c in cells]
    keys = list(names)
    for i, name in enumerate(names):
        twins = [j for j, k in enumerate(names) if k == name]
        if len(twins) > 1:  # e.g. Swin-B pretrained on ImageNet-1K and -21K
            other = next(h for h in header if len({cells[j][h] for j in twins}) > 1)
            keys[i] = f"{name}_{cells[i][other].replace(' ', '-')}"
    return [dict(key=f'{_slug(table)}/{k}', table=table, section=section, cells=c)
            for k, c in zip(keys, cells)]


def parse_seed_file(path: Path) -> List[Row]:
    """Parses the model rows of one seed table file into ``id, table, cells``."""
    seed = re.match(r'\d+', path.name).group(0)
    lines, fenced = [], False
    for line in path.read_text(encoding='utf-8').splitlines():
        if line.lstrip().startswith('```'):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    rows = _html_rows(lines) + _markdown_rows(lines)
    markers = [r['key'] for r in rows if '+' not in r['key']]
    for row in rows:
        key = row.pop('key')
        if '/' not in key and markers.count(key.split('+')[0]) > 1:
            key = f"{_slug(row['table'])}/{key}"
        row['id'] = f'{seed}/{key}'
        row['seed'] = seed
    ids = [r['id'] for r in rows]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f'{path.name}: row ids are not unique: {duplicated}')
    return rows


def parse_seeds(folder: Path) -> List[Row]:
    """Parses every relevant ``NNN_*.txt`` file of a folder, in name order."""
    rows: List[Row] = []
    for path in sorted(folder.glob('[0-9]*.txt')):
        if RELEVANT.search(path.read_text(encoding='utf-8')):
            rows += parse_seed_file(path)
        else:
            print(f'skipped {path.name}: no MaskFormer/Mask2Former table', file=sys.stderr)
    return [dict(id=r['id'], seed=r['seed'], table=r['table'], section=r['section'],
                 cells=r['cells']) for r in rows]


def load_metafiles(repo: Path) -> List[Dict]:
    """The ``Models`` of every ``configs/*/metafile.yaml``."""
    models = []
    for path in sorted(repo.glob('configs/*/metafile.yaml')):
        with open(path, encoding='utf-8') as f:
            models += yaml.safe_load(f).get('Models') or []
    return models


def config_problems(repo: Path, models: List[Dict], row_ids: set) -> List[str]:
    """Inconsistencies between the metafiles, the configs and the seed rows."""
    problems = []
    listed = {m.get('Config') for m in models}
    for model in models:
        if not (repo / str(model.get('Config'))).is_file():
            problems.append(f"{model.get('Name')}: config {model.get('Config')} does not exist")
        for row_id in model.get('Seed Rows') or []:
            if row_id not in row_ids:
                problems.append(f"{model.get('Name')}: seed row {row_id} is not in the tables")
    for path in sorted(repo.glob('configs/*/*.py')):
        relative = path.relative_to(repo).as_posix()
        not_a_model = 'synthetic' in path.name or path.parent.name == '_base_'
        if not not_a_model and relative not in listed:
            problems.append(f'{relative} is in no configs/*/metafile.yaml')
    return problems


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Check that every reference model-zoo row has a config and that the '
        'metafiles and configs agree.')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--seeds', type=Path, help='folder of the NNN_*.txt zoo tables')
    source.add_argument('--rows', type=Path,
                        help=f'parsed rows (default: {DEFAULT_ROWS.relative_to(REPO)})')
    parser.add_argument('--allow-missing', action='append', default=[], metavar='REGEX',
                        help='accept rows without a config whose id, table or section title '
                        'matches REGEX as pending (repeatable)')
    parser.add_argument('--write-rows', type=Path, metavar='JSON',
                        help='write the parsed rows (id, table, cells) to JSON')
    args = parser.parse_args()
    if args.seeds is not None and not args.seeds.is_dir():
        parser.error(f'seeds folder {args.seeds} does not exist')
    if args.seeds is None:
        args.rows = args.rows or DEFAULT_ROWS
        if not args.rows.is_file():
            parser.error(f'rows file {args.rows} does not exist; pass --seeds DIR or a rows '
                         'JSON written by --write-rows')
    return args


def main() -> int:
    args = parse_args()
    if args.seeds is not None:
        rows = parse_seeds(args.seeds)
    else:
        rows = json.loads(args.rows.read_text(encoding='utf-8'))['rows']
    if args.write_rows:
        args.write_rows.write_text(json.dumps(dict(rows=rows), indent=1) + '\n', encoding='utf-8')
        print(f'wrote {len(rows)} rows to {args.write_rows}')
    models = load_metafiles(REPO)
    configs: Dict[str, List[str]] = {}
    for model in models:
        for row_id in model.get('Seed Rows') or []:
            configs.setdefault(row_id, []).append(Path(model['Config']).name)
    allowed = [re.compile(p) for p in args.allow_missing]
    table, missing, pending = [['seed row', 'config(s)', 'status']], [], []
    for row in rows:
        if row['id'] in configs:
            status = 'ok'
        elif any(p.search(text) for p in allowed
                 for text in (row['id'], row['table'], row['section'])):
            status = 'pending (allowed)'
            pending.append(row['id'])
        else:
            status = 'MISSING'
            missing.append(row['id'])
        table.append([row['id'], '\n'.join(configs.get(row['id'], ['-'])), status])
    problems = config_problems(REPO, models, {r['id'] for r in rows})
    print(AsciiTable(table).table)
    for problem in problems:
        print(f'problem: {problem}')
    for row_id in missing:
        print(f'missing: seed row {row_id} has no config in configs/*/metafile.yaml')
    covered = len(rows) - len(missing) - len(pending)
    print(f'Summary: {len(rows)} seed rows, {covered} covered, {len(pending)} pending '
          f'(allowed), {len(missing)} missing; {len(models)} metafile models, '
          f'{len(problems)} problems')
    return 1 if missing or problems else 0


if __name__ == '__main__':
    sys.exit(main())
