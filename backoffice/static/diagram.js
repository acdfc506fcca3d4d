// Draws each BPMN document of a case with bpmn-js (NavigatedViewer, from npm) and marks the
// elements the case completed, is at, or is late at. Data comes from JSON blocks in the page.
(function () {
  "use strict";
  var markersNode = document.getElementById("diagram-markers");
  if (!markersNode || !window.BpmnJS) { return; }
  var markers = JSON.parse(markersNode.textContent);
  document.querySelectorAll("[data-bpmn]").forEach(function (container) {
    var xml = JSON.parse(document.getElementById(container.dataset.bpmn).textContent);
    var viewer = new window.BpmnJS({ container: container });
    viewer.importXML(xml).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var marked = 0;
      Object.keys(markers).forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, "m-" + markers[id]); marked += 1; }
      });
      canvas.zoom("fit-viewport");
      container.dataset.rendered = "true";
      container.dataset.marked = String(marked);
    }).catch(function (error) {
      container.textContent = "BPMN: " + error.message;
      container.dataset.rendered = "error";
    });
  });
})();
