"""newsbeam's record models (pydantic v2) and their exported JSON Schemas."""
from .article import (SCHEMA_VERSION, Article, DeadLetter, DuplicateRecord, Entity, LanguageInfo, Mention,
                      MentionLabel, StageStatus, Stance)

__all__ = ["SCHEMA_VERSION", "Article", "DeadLetter", "DuplicateRecord", "Entity", "LanguageInfo", "Mention",
           "MentionLabel", "StageStatus", "Stance"]
