"""The trial plan: everything one trial's training and evaluation read, resolved and written
once on the driver (``builder``), read by Ray workers and the evaluation stage (``plan``)."""

from scaling.plan.builder import PlanBuilder
from scaling.plan.plan import DataFile, SuiteFile, TrialPlan, TrialResources

__all__ = ["DataFile", "PlanBuilder", "SuiteFile", "TrialPlan", "TrialResources"]
