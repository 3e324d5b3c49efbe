"""Reports staff hand upward: district AQI, good days, water classes, black odour, sorting, housing, targets."""
