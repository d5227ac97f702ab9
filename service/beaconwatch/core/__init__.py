"""The engine: flows in, alerts out on event time (Detector, Pipeline, repartitioning).

Pure and synchronous; it composes decode/, state/, scoring/ and alerting/ over the value
types of domain/."""
