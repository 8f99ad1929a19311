"""Direct Electron acquisitions: info files, the naming convention, scan geometry and the
movie with its virtual and external detector images."""
