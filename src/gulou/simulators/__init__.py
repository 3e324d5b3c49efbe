"""Device simulators: a pure, seeded message generator and a paced MQTT publisher over a connection pool."""

from gulou.simulators.generator import Generator, generate
from gulou.simulators.model import FAULT_KINDS, REJECTED_FAULTS, FaultKind, SimMessage
from gulou.simulators.publisher import SimConfig, SimProgress, SimSummary, SimulationError, run_simulation
from gulou.simulators.scenario import Incident, Scenario, ScenarioError, load_scenario, shipped_scenarios

__all__ = [
    "FAULT_KINDS", "REJECTED_FAULTS", "FaultKind", "Generator", "Incident", "Scenario", "ScenarioError",
    "SimConfig", "SimMessage", "SimProgress", "SimSummary", "SimulationError", "generate", "load_scenario",
    "run_simulation", "shipped_scenarios",
]
