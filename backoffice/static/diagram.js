// Draws each process a case ran through with bpmn-js (NavigatedViewer, from npm) and marks the
// elements the case completed, is at, or is late at. Data comes from JSON blocks in the page.
(function () {
  "use strict";
  if (!window.BpmnJS) { return; }
  document.querySelectorAll("[data-bpmn]").forEach(function (container) {
    var xml = JSON.parse(document.getElementById(container.dataset.bpmn).textContent);
    var markers = JSON.parse(document.getElementById(container.dataset.markers).textContent);
    var viewer = new window.BpmnJS({ container: container });
    viewer.importXML(xml, container.dataset.diagram).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var marked = 0;
      Object.keys(markers).forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, "m-" + markers[id]); marked += 1; }
      });
      canvas.zoom("fit-viewport");
      container.dataset.marked = String(marked);
      container.dataset.rendered = "true";
    }).catch(function (error) {
      container.textContent = "BPMN: " + error.message;
      container.dataset.rendered = "error";
    });
  });
})();
