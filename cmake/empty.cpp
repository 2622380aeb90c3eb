// Placeholder translation unit for a component library whose folder has no sources yet.
