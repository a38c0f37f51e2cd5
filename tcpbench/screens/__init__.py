"""Screens of the workbench: the main screen, dialogs and help (imported lazily by the app)."""
