"""Matchers assigning predictions to ground-truth segments."""
from .hungarian_matcher import HungarianPointMatcher

__all__ = ['HungarianPointMatcher']
