"""Alert handling after the engine: acknowledge, assign, escalate, silence, route, rate-limit, dispatch, close."""
