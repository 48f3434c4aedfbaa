"""The app's routes, one module per area: alert intake, investigations, memory, operations (budget,
queue, audit, metrics, health) and the HTML pages."""
