"""Scaling: policies, metrics, decisions and the scaler (threshold and HPA-style modes)."""

from helix.scaling.policy import ScalingDecision, ScalingMetrics, ScalingMode, ScalingPolicy
from helix.scaling.scaler import Scaler

__all__ = ["Scaler", "ScalingDecision", "ScalingMetrics", "ScalingMode", "ScalingPolicy"]
