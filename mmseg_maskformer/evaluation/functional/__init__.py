"""Pure metric functions and atomic writing of prediction files."""
from mmseg_maskformer.utils.atomic_files import atomic_open, atomic_save_png, atomic_write_json
from .panoptic_quality import (PQ_SPLITS, PanopticFormatError, PQStat, PQStatCat, pq_compute,
                               pq_compute_single, pq_compute_stat, pq_per_class_table,
                               pq_summary_table, read_panoptic_png, summarize_pq,
                               write_panoptic_png)
from .query_analysis import SegmentRecord, best_query_records, summarise_records

__all__ = [
    'atomic_open', 'atomic_save_png', 'atomic_write_json',
    'PQ_SPLITS', 'PanopticFormatError', 'PQStat', 'PQStatCat', 'pq_compute', 'pq_compute_single',
    'pq_compute_stat', 'pq_per_class_table', 'pq_summary_table', 'read_panoptic_png',
    'summarize_pq', 'write_panoptic_png', 'SegmentRecord', 'best_query_records',
    'summarise_records'
]
