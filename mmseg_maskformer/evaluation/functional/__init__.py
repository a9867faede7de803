"""Pure metric functions."""
from .panoptic_quality import (PQ_SPLITS, PanopticFormatError, PQStat, PQStatCat, pq_compute,
                               pq_compute_single, pq_compute_stat, pq_per_class_table,
                               pq_summary_table, read_panoptic_png, summarize_pq,
                               write_panoptic_png)

__all__ = [
    'PQ_SPLITS', 'PanopticFormatError', 'PQStat', 'PQStatCat', 'pq_compute', 'pq_compute_single',
    'pq_compute_stat', 'pq_per_class_table', 'pq_summary_table', 'read_panoptic_png',
    'summarize_pq', 'write_panoptic_png'
]
