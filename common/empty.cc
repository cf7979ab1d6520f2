// Lets a layer with no sources yet still be a library target.
